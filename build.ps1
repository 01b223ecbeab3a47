#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, packages, tests, demonstrates and benchmarks the FullStory module.
.DESCRIPTION
    Needs only the .NET SDK: run it as `dotnet tool restore; dotnet pwsh -NoProfile -File build.ps1 -Task <Task>`.
    Build    compiles the solution.
    Package  writes the importable module to out/FullStory (manifest, cmdlet assembly, dependencies/ with runtimes/) and
             the PowerShell Gallery package out/gallery/FullStory.<version>.nupkg.
    Test     packages, then runs every test: xunit (engine and emulator) and Pester (the module in real pwsh processes),
             and ends with one line "total: N passed, N failed, N skipped".
    Demo     packages, starts the local FullStory emulator and runs a full sync into the embedded database.
    Bench    packages and writes benchmark figures to benchmarks/results.md.
.EXAMPLE
    dotnet pwsh -NoProfile -File build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Package', 'Test', 'Demo', 'Bench', 'Clean')]
    [string[]] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Run only test projects/files whose name matches (e.g. 'Engine', 'Module'); all by default.
    [string] $TestFilter = '*'
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$env:NO_COLOR = '1'
$env:DOTNET_NOLOGO = '1'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'FullStory'
$GalleryOut = Join-Path $Out 'gallery'
$ResultsDir = Join-Path $Out 'test-results'

function Invoke-Native {
    param([string] $Command, [string[]] $Arguments)
    Write-Host "> $Command $($Arguments -join ' ')"
    & $Command @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Command exited with code $LASTEXITCODE" }
}

function Invoke-Build {
    Invoke-Native dotnet @('build', (Join-Path $Root 'FullStoryPS.sln'), '-c', $Configuration, '-nologo', '-v', 'q', '/clp:ErrorsOnly')
}

function Invoke-Package {
    Invoke-Build
    if (Test-Path $ModuleOut) { Remove-Item $ModuleOut -Recurse -Force }
    $deps = Join-Path $ModuleOut 'dependencies'
    New-Item -ItemType Directory -Force -Path $deps | Out-Null

    # The engine and its packages go to dependencies/, loaded by the module's private AssemblyLoadContext.
    Invoke-Native dotnet @('publish', (Join-Path $Root 'src/FullStory.Engine'), '-c', $Configuration, '-o', $deps, '--no-build', '-nologo', '-v', 'q')
    # Microsoft.Data.SqlClient's portable lib/ assembly is a stub that throws "not supported on this platform";
    # the real ones stay under runtimes/<win|unix>/lib/net8.0 and ModuleLoadContext picks them.
    Remove-Item (Join-Path $deps 'Microsoft.Data.SqlClient.dll') -ErrorAction SilentlyContinue
    Get-ChildItem $deps -Filter '*.deps.json' | Remove-Item
    # Keep the native assets of the platforms pwsh 7.4+ runs on; the MSAL broker runtime is Windows-only in use.
    $keep = 'win', 'win-x64', 'win-x86', 'win-arm64', 'unix', 'linux-x64', 'linux-arm64', 'linux-musl-x64', 'linux-musl-arm64', 'osx-x64', 'osx-arm64'
    Get-ChildItem (Join-Path $deps 'runtimes') -Directory | Where-Object Name -NotIn $keep | Remove-Item -Recurse -Force
    Get-ChildItem (Join-Path $deps 'runtimes') -Recurse -File -Include 'libmsalruntime*' | Remove-Item -Force

    $cmdlets = Join-Path $Root "src/FullStory.PowerShell/bin/$Configuration/net8.0"
    Copy-Item (Join-Path $cmdlets 'FullStory.PowerShell.dll'), (Join-Path $cmdlets 'FullStory.PowerShell.pdb') $ModuleOut
    Copy-Item (Join-Path $Root 'FullStory.psd1') $ModuleOut
    Copy-Item (Join-Path $Root 'module/*') $ModuleOut -Recurse
    $helpBuilder = Join-Path $Root 'module/build/Build-Help.ps1'
    if (Test-Path $helpBuilder) { & $helpBuilder -SourceDirectory (Join-Path $Root 'docs/help') -ModuleDirectory $ModuleOut }
    Remove-Item (Join-Path $ModuleOut 'build') -Recurse -Force -ErrorAction SilentlyContinue
    Write-Host "Packaged module: $ModuleOut"
    Invoke-GalleryPackage
}

# The PowerShell Gallery package: the .nupkg Publish-PSResource would upload, made by PSResourceGet (shipped with pwsh 7.4+)
# from the packaged module. Install it from a folder with Register-PSResourceRepository -Uri <folder>; Install-PSResource FullStory.
function Invoke-GalleryPackage {
    Import-Module Microsoft.PowerShell.PSResourceGet -ErrorAction Stop
    if (Test-Path $GalleryOut) { Remove-Item $GalleryOut -Recurse -Force }
    New-Item -ItemType Directory -Force -Path $GalleryOut | Out-Null
    # Validates the manifest as Publish-PSResource does (Test-ModuleManifest) before packing.
    $nupkg = Compress-PSResource -Path $ModuleOut -DestinationPath $GalleryOut -PassThru
    Write-Host "Gallery package: $nupkg"
}

function Restore-TestTools {
    Invoke-Native dotnet @('restore', (Join-Path $Root 'tests/tools/TestTools.csproj'), '-nologo', '-v', 'q')
}

function Get-TrxCounts([string] $Path) {
    [xml] $trx = Get-Content -Raw $Path
    $c = $trx.TestRun.ResultSummary.Counters
    # Skipped tests are results with outcome NotExecuted; the notExecuted counter stays 0, so count them as total - executed.
    [pscustomobject]@{ Passed = [int]$c.passed; Failed = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted; Skipped = [math]::Max([int]$c.notExecuted, [int]$c.total - [int]$c.executed) }
}

# The SQL Server the tests run against: FULLSTORY_SQLSERVER_CONNECTION_STRING when set; else, when ../shared/tds (the
# Babelfish stand-in that speaks TDS) is beside the repository, a server of its own started for this run, in a directory
# and on a port of its own (never the default ones, so other runs and servers are not disturbed). Returns what ran, how
# to say so, and how to stop it; $null ConnectionString = no server (the SQL Server tests skip, and the run says why).
function Start-TestSqlServer {
    if ($env:FULLSTORY_SQLSERVER_CONNECTION_STRING) {
        return [pscustomobject]@{ ConnectionString = $env:FULLSTORY_SQLSERVER_CONNECTION_STRING; Started = $false; Error = $null
            Description = 'the server in FULLSTORY_SQLSERVER_CONNECTION_STRING' }
    }
    $start = Join-Path $Root '../shared/tds/start-tds-server'
    if (-not $IsLinux -or -not (Test-Path $start)) {
        return [pscustomobject]@{ ConnectionString = $null; Started = $false; Error = $null
            Description = 'none: FULLSTORY_SQLSERVER_CONNECTION_STRING is not set and there is no ../shared/tds/start-tds-server beside the repository' }
    }
    $start = (Resolve-Path $start).Path
    $stop = Join-Path (Split-Path $start) 'stop-tds-server'
    $dir = Join-Path ([IO.Path]::GetTempPath()) "fullstory-test-tds-$PID"
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
    $server = [pscustomobject]@{ ConnectionString = $null; Started = $true; Error = $null; Directory = $dir; Stop = $stop; Watchdog = $null
        Description = "the TDS stand-in for SQL Server (Babelfish, ../shared/tds) on 127.0.0.1,$port, started for this run in $dir" }
    # If this process is killed (no finally runs), a detached watchdog stops the server once it sees this process gone.
    $quoted = { param($s) "'" + ($s -replace "'", "'\''") + "'" }
    $watch = "exec </dev/null >/dev/null 2>&1; while kill -0 $PID 2>/dev/null; do sleep 2; done; $(& $quoted $stop) --dir $(& $quoted $dir); rm -rf $(& $quoted $dir)"
    $psi = [System.Diagnostics.ProcessStartInfo]::new('setsid', [string[]]@('bash', '-c', $watch))
    $psi.RedirectStandardInput = $true; $psi.RedirectStandardOutput = $true; $psi.RedirectStandardError = $true; $psi.UseShellExecute = $false
    $server.Watchdog = [System.Diagnostics.Process]::Start($psi)
    Write-Host "> $start --port $port --dir $dir"
    $line = & $start --port $port --dir $dir | Select-Object -Last 1
    if ($LASTEXITCODE -ne 0 -or -not $line) {
        $server.Error = "start-tds-server failed (exit code $LASTEXITCODE; its messages are above). It needs root the first time, to apt-get install a missing run-time library."
        return $server
    }
    $server.ConnectionString = [string]$line
    $server
}

function Stop-TestSqlServer($Server) {
    if (-not $Server -or -not $Server.Started) { return }
    Write-Host "> $($Server.Stop) --dir $($Server.Directory)"
    & $Server.Stop --dir $Server.Directory
    Remove-Item $Server.Directory -Recurse -Force -ErrorAction SilentlyContinue
}

# Runs xunit (every *.Tests project under tests/) and Pester (the packaged module in real pwsh processes), adding each
# one's counts to $results.
function Invoke-TestSuites($results, $failures) {
    # xunit: every *.Tests project under tests/.
    foreach ($project in Get-ChildItem (Join-Path $Root 'tests') -Recurse -Filter '*.Tests.csproj' | Where-Object BaseName -Like "*$TestFilter*") {
        $trx = "$($project.BaseName).trx"
        Write-Host "> dotnet test $($project.Name)"
        & dotnet test $project.FullName -c $Configuration -nologo --logger "trx;LogFileName=$trx" --logger 'console;verbosity=minimal' --results-directory $ResultsDir
        $trxPath = Join-Path $ResultsDir $trx
        if (-not (Test-Path $trxPath)) { $failures.Add("$($project.BaseName): no results (build or host failure)"); $results.Add([pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 }); continue }
        $counts = Get-TrxCounts $trxPath
        Write-Host ("{0}: {1} passed, {2} failed, {3} skipped" -f $project.BaseName, $counts.Passed, $counts.Failed, $counts.Skipped)
        $results.Add($counts)
    }

    # Pester: the packaged module in a separate, real pwsh process.
    $pesterDir = Join-Path $Root 'tests/FullStory.Module.Tests'
    if ('Module' -like "*$TestFilter*" -or $TestFilter -eq '*') {
        $pesterJson = Join-Path $ResultsDir 'pester.json'
        $pester = Join-Path $Root '.packages/pester/5.7.1/tools/Pester.psd1'
        $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$pester'
`$config = New-PesterConfiguration
`$config.Run.Path = '$pesterDir'
`$config.Run.PassThru = `$true
`$config.Output.Verbosity = 'Normal'
`$config.TestResult.Enabled = `$true
`$config.TestResult.OutputPath = '$(Join-Path $ResultsDir 'pester.xml')'
`$r = Invoke-Pester -Configuration `$config
@{ Passed = `$r.PassedCount; Failed = `$r.FailedCount + `$r.FailedBlocksCount + `$r.FailedContainersCount; Skipped = `$r.SkippedCount + `$r.NotRunCount } | ConvertTo-Json | Set-Content '$pesterJson'
"@
        $pwsh = Get-PwshInvocation
        & $pwsh[0] @($pwsh[1..($pwsh.Count)] | Where-Object { $_ }) -NoProfile -NonInteractive -Command $script
        if (Test-Path $pesterJson) {
            $p = Get-Content -Raw $pesterJson | ConvertFrom-Json
            Write-Host ("Pester: {0} passed, {1} failed, {2} skipped" -f $p.Passed, $p.Failed, $p.Skipped)
            $results.Add([pscustomobject]@{ Passed = [int]$p.Passed; Failed = [int]$p.Failed; Skipped = [int]$p.Skipped })
        }
        else {
            $failures.Add('Pester: no results')
            $results.Add([pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 })
        }
    }
}

function Invoke-Test {
    Invoke-Package
    Restore-TestTools
    if (Test-Path $ResultsDir) { Remove-Item $ResultsDir -Recurse -Force }
    New-Item -ItemType Directory -Force -Path $ResultsDir | Out-Null
    $env:FULLSTORY_MODULE_PATH = Join-Path $ModuleOut 'FullStory.psd1'
    $env:FULLSTORY_REPO_ROOT = $Root

    $results = [System.Collections.Generic.List[object]]::new()
    $failures = [System.Collections.Generic.List[string]]::new()

    $savedConnectionString = $env:FULLSTORY_SQLSERVER_CONNECTION_STRING
    $sqlServer = $null
    # finally: the server is stopped however the run ends (tests fail, Ctrl+C stops the script, an error is thrown).
    try {
        $sqlServer = Start-TestSqlServer
        if ($sqlServer.Error) { $failures.Add("SQL Server: $($sqlServer.Error)"); $results.Add([pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 }) }
        $env:FULLSTORY_SQLSERVER_CONNECTION_STRING = $sqlServer.ConnectionString
        Write-Host "SQL Server for the tests: $($sqlServer.Description)$(if ($sqlServer.Error) { ' - not running: ' + $sqlServer.Error })"
        Invoke-TestSuites $results $failures
    }
    finally {
        Stop-TestSqlServer $sqlServer
        $env:FULLSTORY_SQLSERVER_CONNECTION_STRING = $savedConnectionString
    }

    $passed = ($results | Measure-Object Passed -Sum).Sum
    $failed = ($results | Measure-Object Failed -Sum).Sum
    $skipped = ($results | Measure-Object Skipped -Sum).Sum
    $failures | ForEach-Object { Write-Host "FAILED: $_" }
    if ($sqlServer.ConnectionString) { Write-Host "SQL Server tests ran against $($sqlServer.Description)." }
    elseif ($sqlServer.Error) { Write-Host "SQL Server tests against a live server were skipped: $($sqlServer.Error)" }
    else { Write-Host 'SQL Server tests against a live server were skipped: FULLSTORY_SQLSERVER_CONNECTION_STRING is not set and ../shared/tds is not beside the repository (T-SQL was still checked with ScriptDom).' }
    Write-Host ("total: {0} passed, {1} failed, {2} skipped" -f $passed, $failed, $skipped)
    if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
}

# How to start another pwsh like this one: pwsh itself, or `dotnet pwsh.dll` when run as a dotnet tool.
function Get-PwshInvocation {
    $exe = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { return @($exe, (Join-Path $PSHOME 'pwsh.dll')) }
    return @($exe)
}

function Invoke-Demo {
    Invoke-Package
    Invoke-Native dotnet @('build', (Join-Path $Root 'tests/FullStory.Emulator'), '-c', $Configuration, '-nologo', '-v', 'q', '/clp:ErrorsOnly')
    $pwsh = Get-PwshInvocation
    & $pwsh[0] @($pwsh[1..($pwsh.Count)] | Where-Object { $_ }) -NoProfile -NonInteractive -File (Join-Path $Root 'demo/Start-Demo.ps1') -ModulePath (Join-Path $ModuleOut 'FullStory.psd1') -Configuration $Configuration
    if ($LASTEXITCODE -ne 0) { throw "The demo failed (exit code $LASTEXITCODE)." }
}

function Invoke-Bench {
    Invoke-Package
    Invoke-Native dotnet @('build', (Join-Path $Root 'tests/FullStory.Emulator'), '-c', $Configuration, '-nologo', '-v', 'q', '/clp:ErrorsOnly')
    $pwsh = Get-PwshInvocation
    # The SQL Server rows load into the same server the tests use (started for this run when ../shared/tds is there).
    $savedConnectionString = $env:FULLSTORY_SQLSERVER_CONNECTION_STRING
    $sqlServer = $null
    try {
        $sqlServer = Start-TestSqlServer
        $env:FULLSTORY_SQLSERVER_CONNECTION_STRING = $sqlServer.ConnectionString
        Write-Host "SQL Server for the benchmarks: $($sqlServer.Description)$(if ($sqlServer.Error) { ' - not running: ' + $sqlServer.Error })"
        & $pwsh[0] @($pwsh[1..($pwsh.Count)] | Where-Object { $_ }) -NoProfile -NonInteractive -File (Join-Path $Root 'benchmarks/Invoke-Benchmarks.ps1') -ModulePath (Join-Path $ModuleOut 'FullStory.psd1') -Configuration $Configuration
        if ($LASTEXITCODE -ne 0) { throw "The benchmarks failed (exit code $LASTEXITCODE)." }
    }
    finally {
        Stop-TestSqlServer $sqlServer
        $env:FULLSTORY_SQLSERVER_CONNECTION_STRING = $savedConnectionString
    }
}

foreach ($t in $Task) {
    switch ($t) {
        'Clean' { Remove-Item $Out -Recurse -Force -ErrorAction SilentlyContinue; Invoke-Native dotnet @('clean', (Join-Path $Root 'FullStoryPS.sln'), '-nologo', '-v', 'q') }
        'Build' { Invoke-Build }
        'Package' { Invoke-Package }
        'Test' { Invoke-Test }
        'Demo' { Invoke-Demo }
        'Bench' { Invoke-Bench }
    }
}
