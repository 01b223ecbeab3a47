# Shared helpers for the Pester tests: where the packaged module is, the emulator as a process, and fresh pwsh processes.
Set-StrictMode -Version Latest

$script:RepoRoot = if ($env:FULLSTORY_REPO_ROOT) { $env:FULLSTORY_REPO_ROOT } else { (Resolve-Path "$PSScriptRoot/../..").Path }

function Get-TestModulePath {
    if ($env:FULLSTORY_MODULE_PATH) { return $env:FULLSTORY_MODULE_PATH }
    Join-Path $script:RepoRoot 'out/FullStory/FullStory.psd1'
}

function Get-RepoRoot { $script:RepoRoot }

# Starts the FullStory emulator as a process on a free loopback port. Returns BaseUri, ApiKey, Process.
function Start-TestEmulator {
    param([string[]] $Arguments = @())
    $dll = Get-ChildItem (Join-Path $script:RepoRoot 'tests/FullStory.Emulator/bin') -Recurse -Filter 'FullStory.Emulator.dll' |
        Where-Object { $_.Directory.Name -eq 'net10.0' } | Sort-Object LastWriteTime -Descending | Select-Object -First 1
    if (-not $dll) { throw 'The emulator is not built: run build.ps1 -Task Test (or dotnet build tests/FullStory.Emulator).' }
    $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    $psi.ArgumentList.Add($dll.FullName)
    foreach ($a in $Arguments + @('--no-stdin')) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($psi)
    $line = $process.StandardOutput.ReadLine()
    if (-not $line) { throw "The emulator did not start: $($process.StandardError.ReadToEnd())" }
    $info = $line | ConvertFrom-Json
    [pscustomobject]@{ BaseUri = [string]$info.baseUri; ApiKey = [string]$info.apiKey; Process = $process }
}

function Stop-TestEmulator {
    param($Emulator)
    if ($Emulator -and -not $Emulator.Process.HasExited) { $Emulator.Process.Kill(); $Emulator.Process.WaitForExit(5000) | Out-Null }
}

# Calls the emulator's control API (/_emulator/...).
function Invoke-Emulator {
    param($Emulator, [string] $Path, [string] $Method = 'Get', $Body)
    $uri = $Emulator.BaseUri.TrimEnd('/') + $Path
    if ($null -ne $Body) {
        $json = if ($Body -is [string]) { $Body } else { ConvertTo-Json -InputObject $Body -Depth 10 }
        Invoke-RestMethod -Uri $uri -Method $Method -Body $json -ContentType 'application/json'
    }
    else { Invoke-RestMethod -Uri $uri -Method $Method }
}

# Runs a script in a new pwsh process (as a scheduled task would); returns ExitCode, Output (stdout) and Errors (stderr).
function Invoke-FreshPwsh {
    param([string] $Script, [hashtable] $Environment = @{}, [int] $TimeoutSeconds = 300)
    $exe = [Environment]::ProcessPath
    $psi = [System.Diagnostics.ProcessStartInfo]::new($exe)
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    foreach ($a in '-NoProfile', '-NonInteractive', '-Command', '-') { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.UseShellExecute = $false
    $psi.Environment['NO_COLOR'] = '1'
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = [string]$Environment[$k] }
    $p = [System.Diagnostics.Process]::Start($psi)
    $p.StandardInput.WriteLine($Script)
    $p.StandardInput.Close()
    $stdout = $p.StandardOutput.ReadToEndAsync()
    $stderr = $p.StandardError.ReadToEndAsync()
    if (-not $p.WaitForExit($TimeoutSeconds * 1000)) { $p.Kill(); throw "pwsh did not finish within $TimeoutSeconds s" }
    [pscustomobject]@{ ExitCode = $p.ExitCode; Output = $stdout.Result; Errors = $stderr.Result }
}

# Starts a script in a new pwsh process and returns the process without waiting: for tests that kill it mid-run.
function Start-PwshProcess {
    param([string] $Script)
    $exe = [Environment]::ProcessPath
    $psi = [System.Diagnostics.ProcessStartInfo]::new($exe)
    if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
    foreach ($a in '-NoProfile', '-NonInteractive', '-Command', $Script) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true; $psi.UseShellExecute = $false
    [System.Diagnostics.Process]::Start($psi)
}

# The engine's dependency self-check, reached through a module type (engine type literals do not resolve: private load context).
function Invoke-DependencyCheck {
    $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'FullStory.Engine' } | Select-Object -First 1
    $assembly.GetType('FullStory.Engine.Diagnostics.DependencyCheck', $true)::Run()
}

# Runs a query on a SQLite file with the Microsoft.Data.Sqlite the module loaded (reached by reflection: it lives in the
# module's private load context); returns the first column of the first row.
function Invoke-SqliteQuery {
    param([string] $Path, [string] $Query)
    $sqlite = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -First 1
    if (-not $sqlite) { throw 'Microsoft.Data.Sqlite is not loaded yet: run a module command that uses SQLite first.' }
    $connection = [Activator]::CreateInstance($sqlite.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true), @("Data Source=$Path;Mode=ReadOnly"))
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = $Query
        $command.ExecuteScalar()
    }
    finally { $connection.Dispose() }
}

# Runs SQL in DuckDB over a Parquet lake (tests/FullStory.LakeQuery: an engine independent of the module, in its own
# process); returns the rows as objects. `{events}` in the query stands for read_parquet over the folder's events table.
function Invoke-LakeQuery {
    param([string] $Folder, [string] $Query, [string] $Table = 'events')
    $dll = Get-ChildItem (Join-Path $script:RepoRoot 'tests/FullStory.LakeQuery/bin') -Recurse -Filter 'FullStory.LakeQuery.dll' |
        Where-Object { $_.Directory.Name -eq 'net10.0' } | Sort-Object LastWriteTime -Descending | Select-Object -First 1
    if (-not $dll) { throw 'tests/FullStory.LakeQuery is not built: run build.ps1 -Task Test (or dotnet build tests/FullStory.LakeQuery).' }
    $glob = (Join-Path $Folder $Table).Replace("'", "''") + '/**/*.parquet'
    $sql = $Query.Replace('{events}', "read_parquet('$glob', hive_partitioning = true, union_by_name = true)")
    $json = & dotnet $dll.FullName $sql
    if ($LASTEXITCODE -ne 0) { throw "DuckDB failed on: $sql" }
    @($json | ConvertFrom-Json -NoEnumerate -DateKind String)[0]
}

Export-ModuleMember -Function *
