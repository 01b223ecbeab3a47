# The packaged module in a real pwsh process: manifest, import, dependencies, and coexistence with another SqlClient.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    $script:Manifest = Import-PowerShellDataFile $ModulePath
    Import-Module $ModulePath -Force
}

Describe 'The module manifest' {
    It 'lists exactly the commands the module exports, explicitly' {
        $Manifest.CmdletsToExport | Should -Not -Contain '*'
        $Manifest.AliasesToExport | Should -Not -Contain '*'
        $exported = (Get-Module FullStory).ExportedCmdlets.Keys | Sort-Object
        $exported | Should -Be ($Manifest.CmdletsToExport | Sort-Object)
        (Get-Module FullStory).ExportedAliases.Keys | Sort-Object | Should -Be ($Manifest.AliasesToExport | Sort-Object)
    }
    It 'declares editions, version and gallery metadata' {
        $Manifest.CompatiblePSEditions | Should -Be @('Core')
        [version]$Manifest.PowerShellVersion | Should -BeGreaterOrEqual ([version]'7.4')
        $Manifest.PrivateData.PSData.Tags | Should -Contain 'FullStory'
        $Manifest.PrivateData.PSData.ProjectUri | Should -Match '^https://'
        $Manifest.Description.Length | Should -BeGreaterThan 40
    }
    It 'resolves the plural names of the design card as aliases of the singular cmdlets' {
        foreach ($pair in @(@('Receive-FullStoryEvents', 'Receive-FullStoryEvent'), @('Export-FullStoryEvents', 'Export-FullStoryEvent'), @('Sync-FullStoryEvents', 'Sync-FullStoryEvent'))) {
            $alias = Get-Alias $pair[0] -ErrorAction SilentlyContinue
            if ((Get-Module FullStory).ExportedCmdlets.ContainsKey($pair[1])) { $alias.ResolvedCommandName | Should -Be $pair[1] }
        }
    }
}

Describe 'Dependencies inside the module' {
    It 'runs the real SqlClient, the native SQLite library and Polly from the private load context' {
        $checks = Invoke-DependencyCheck
        $checks.Count | Should -Be 3
        foreach ($c in $checks) {
            $c.Works | Should -BeTrue -Because "$($c.Name): $($c.Detail)"
            $c.LoadContext | Should -Be 'FullStory'
            $c.Location | Should -BeLike "$(Split-Path $ModulePath)*"
        }
        ($checks | Where-Object Name -eq 'Microsoft.Data.SqlClient').Location | Should -Match 'runtimes[/\\](unix|win)[/\\]lib'
        ($checks | Where-Object Name -eq 'Microsoft.Data.SqlClient').Detail | Should -Match 'real client'
        ($checks | Where-Object Name -eq 'Microsoft.Data.Sqlite').Detail | Should -Match '^SQLite 3\.'
    }
    It 'keeps SqlClient, SQLite and Polly out of the default load context' {
        $default = [System.Runtime.Loader.AssemblyLoadContext]::Default.Assemblies.GetName().Name
        $default | Should -Not -Contain 'Microsoft.Data.SqlClient'
        $default | Should -Not -Contain 'Polly.Core'
        $default | Should -Not -Contain 'FullStory.Engine'
    }
}

Describe 'Another module has already loaded a different Microsoft.Data.SqlClient' {
    It 'imports and works, and the other SqlClient keeps working' {
        $other = Join-Path (Get-RepoRoot) '.packages/microsoft.data.sqlclient/5.2.2/runtimes/unix/lib/net8.0/Microsoft.Data.SqlClient.dll'
        if ($IsWindows) { $other = $other -replace 'unix', 'win' }
        Test-Path $other | Should -BeTrue -Because 'build.ps1 restores tests/tools/TestTools.csproj'
        $script = @"
`$ErrorActionPreference = 'Stop'
Add-Type -Path '$other'
`$b = [Microsoft.Data.SqlClient.SqlConnectionStringBuilder]::new('Server=a;Database=b')
Import-Module '$ModulePath'
Import-Module '$PSScriptRoot/TestHelpers.psm1'
`$checks = Invoke-DependencyCheck
# The other module's SqlClient still answers (its own Open needs its own dependencies, which a real module ships).
`$c = [Microsoft.Data.SqlClient.SqlConnection]::new('Server=127.0.0.1,1;Connect Timeout=1;Encrypt=false')
`$otherWorks = `$c.GetType().Assembly.GetName().Version.Major.ToString() + ':' + `$c.DataSource
`$loaded = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'Microsoft.Data.SqlClient' } | ForEach-Object { `$_.GetName().Version.ToString() }
[pscustomobject]@{ Ours = @(`$checks | ForEach-Object { "`$(`$_.Name)=`$(`$_.Works)" }) -join ';'; Other = `$b.DataSource; OtherOpen = `$otherWorks; Versions = (`$loaded | Sort-Object) -join ',' } | ConvertTo-Json -Compress
"@
        $r = Invoke-FreshPwsh -Script $script
        $r.ExitCode | Should -Be 0 -Because $r.Errors
        $result = ($r.Output.Trim() -split "`n")[-1] | ConvertFrom-Json
        $result.Ours | Should -Be 'Microsoft.Data.SqlClient=True;Microsoft.Data.Sqlite=True;Polly.Core=True'
        $result.Other | Should -Be 'a'
        $result.OtherOpen | Should -Be '5:127.0.0.1,1'
        $result.Versions | Should -Match '^5\.\d+\.\d+\.\d+,6\.\d+\.\d+\.\d+$' # both versions side by side
    }
}
