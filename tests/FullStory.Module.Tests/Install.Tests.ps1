# The module installs the standard way: the gallery package build.ps1 -Task Package writes is what Publish-PSResource
# makes, and PSResourceGet (shipped with pwsh) installs it from a repository and the installed module works in a fresh
# pwsh. The PowerShell Gallery is not reachable here: a local file repository stands in for it. Each pwsh below gets a
# home of its own, so the repository registration and the CurrentUser install never touch this machine's.
BeforeDiscovery {
    # Skipped on Windows: the isolation below gives each pwsh its own HOME, which PSResourceGet's CurrentUser scope and
    # repository store do not follow there (Documents and LOCALAPPDATA), so the test would install into the real profile.
    $script:OnWindows = $IsWindows
}
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    $script:ModuleDir = Split-Path $ModulePath
    $script:Version = (Import-PowerShellDataFile $ModulePath).ModuleVersion
    $script:Nupkg = Join-Path (Split-Path $ModuleDir) "gallery/FullStory.$Version.nupkg"
    $script:Root = Join-Path ([IO.Path]::GetTempPath()) "fs-install-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $script:UserHome = Join-Path $Root 'home'
    # The folders must exist: .NET answers "" for a special folder that does not, and PSResourceGet would then keep its
    # repository store in the current directory.
    foreach ($d in '.local/share/powershell/Modules', '.config', '.cache') { New-Item -ItemType Directory -Force (Join-Path $UserHome $d) | Out-Null }
    # A pwsh as a user on a fresh machine would have it: its own home, the built-in modules (PSResourceGet) only.
    $script:Isolated = @{
        HOME          = $UserHome
        XDG_DATA_HOME = Join-Path $UserHome '.local/share'
        XDG_CONFIG_HOME = Join-Path $UserHome '.config'
        XDG_CACHE_HOME = Join-Path $UserHome '.cache'
        PSModulePath  = Join-Path $UserHome '.local/share/powershell/Modules'
    }
    # Runs a script in such a pwsh and returns the JSON it prints after 'RESULT '.
    function Invoke-AsUser([string] $Script) {
        # A script file, run as one command from the user's home (pwsh -Command - would run it line by line).
        $file = Join-Path $Root "step-$([guid]::NewGuid().ToString('N').Substring(0, 8)).ps1"
        Set-Content -Path $file -Value $Script
        $r = Invoke-FreshPwsh -Script "Set-Location '$UserHome'; & '$file'" -Environment $Isolated -TimeoutSeconds 600
        $line = $r.Output -split "`n" | Where-Object { $_ -like 'RESULT *' } | Select-Object -Last 1
        if (-not $line) { throw "No result: $($r.Output) $($r.Errors)" }
        $line.Substring(7) | ConvertFrom-Json
    }
}
AfterAll { Remove-Item $Root -Recurse -Force -ErrorAction SilentlyContinue }

Describe 'The gallery package' -Skip:$OnWindows {
    It 'is written by build.ps1 -Task Package, with the manifest metadata the gallery shows' {
        Test-Path $Nupkg | Should -BeTrue -Because 'build.ps1 -Task Package writes out/gallery/FullStory.<version>.nupkg'
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead($Nupkg)
        try {
            $entries = @($zip.Entries.FullName)
            $reader = [IO.StreamReader]::new(($zip.Entries | Where-Object FullName -eq 'FullStory.nuspec').Open())
            [xml] $nuspec = $reader.ReadToEnd()
            $reader.Dispose()
        }
        finally { $zip.Dispose() }
        foreach ($file in 'FullStory.psd1', 'FullStory.psm1', 'FullStory.PowerShell.dll', 'FullStory.format.ps1xml', 'en-US/about_FullStory.help.txt',
            'en-US/FullStory.PowerShell.dll-Help.xml', 'dependencies/FullStory.Engine.dll', 'dependencies/runtimes/unix/lib/net8.0/Microsoft.Data.SqlClient.dll') {
            $entries | Should -Contain $file
        }
        $entries | Should -Not -Contain 'dependencies/Microsoft.Data.SqlClient.dll' -Because "SqlClient's portable stub throws on every platform"
        $m = $nuspec.package.metadata
        $m.id | Should -Be 'FullStory'
        $m.version | Should -Be $Version
        $m.tags -split ' ' | Should -Contain 'PSModule'
        $m.tags -split ' ' | Should -Contain 'SQLite'
        $m.projectUrl | Should -Match '^https://'
        $m.licenseUrl | Should -Match '^https://'
        $m.releaseNotes | Should -Match 'Sync-FullStoryEvent'
        $m.description.Length | Should -BeGreaterThan 50
    }

    It 'has the files Publish-PSResource publishes from the module folder' {
        $published = Join-Path $Root 'published'
        New-Item -ItemType Directory -Force $published | Out-Null
        $r = Invoke-AsUser @"
`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'
Register-PSResourceRepository -Name PublishCheck -Uri '$published' -Trusted
Publish-PSResource -Path '$ModuleDir' -Repository PublishCheck
`$store = Join-Path ([Environment]::GetFolderPath('LocalApplicationData')) 'PSResourceGet/PSResourceRepository.xml'
'RESULT ' + (@{ Files = @(Get-ChildItem '$published' -Filter *.nupkg | ForEach-Object Name); Store = if (Select-String -Path `$store -Pattern PublishCheck -Quiet) { `$store } } | ConvertTo-Json -Compress)
"@
        $r.Files | Should -Be @("FullStory.$Version.nupkg")
        $r.Store | Should -BeLike "$UserHome*" -Because "the repository was registered in the test's own home, not the machine's"
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $list = {
            param($path)
            $zip = [IO.Compression.ZipFile]::OpenRead($path)
            try { @($zip.Entries | Where-Object { $_.FullName -notlike '_rels/*' -and $_.FullName -notlike 'package/*' -and $_.FullName -ne '[Content_Types].xml' } | ForEach-Object FullName | Sort-Object) }
            finally { $zip.Dispose() }
        }
        & $list $Nupkg | Should -Be (& $list (Join-Path $published "FullStory.$Version.nupkg"))
    }

    It 'installs with Install-PSResource from a registered repository, imports by name and works in a fresh pwsh' {
        $repo = Join-Path $Root 'repo'
        New-Item -ItemType Directory -Force $repo | Out-Null
        Copy-Item $Nupkg $repo
        $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'
        $emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '25')
        try {
            $r = Invoke-AsUser @"
`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'
Register-PSResourceRepository -Name FullStoryLocal -Uri '$repo' -Trusted
`$found = Find-PSResource -Name FullStory -Repository FullStoryLocal
Install-PSResource -Name FullStory -Repository FullStoryLocal -Scope CurrentUser -TrustRepository
Import-Module FullStory
`$module = Get-Module FullStory
`$events = Receive-FullStoryEvent -Path '$sample'
Connect-FullStory -ApiKey '$($emulator.ApiKey)' -BaseUri '$($emulator.BaseUri)'
`$bundles = Get-FullStoryBundle -Start '2000-01-01' -WarningAction SilentlyContinue
`$received = Get-FullStoryBundle -Start '2000-01-01' -WarningAction SilentlyContinue | Receive-FullStoryEvent
'RESULT ' + (@{
    Found = `$found.Version.ToString(); ModuleBase = `$module.ModuleBase; Version = `$module.Version.ToString()
    Installed = @(Get-InstalledPSResource -Name FullStory -Scope CurrentUser | ForEach-Object { `$_.Version.ToString() })
    Events = `$events.Count; FirstType = `$events[0].EventType; Bundles = `$bundles.Count; Received = `$received.Count
    Help = (Get-Help Receive-FullStoryEvent).Synopsis
} | ConvertTo-Json -Compress)
"@
        }
        finally { Stop-TestEmulator $emulator }
        $r.Found | Should -Be $Version
        $r.Installed | Should -Be @($Version)
        $r.Version | Should -Be $Version
        $r.ModuleBase | Should -BeLike "$UserHome*" -Because 'it is the installed copy, not the build output'
        $r.Events | Should -Be 144
        $r.FirstType | Should -Not -BeNullOrEmpty
        $r.Bundles | Should -Be 2
        $r.Received | Should -Be 50
        $r.Help | Should -Match 'FullStory'
    }
}
