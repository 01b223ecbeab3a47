# A process killed in the middle of a load (SIGKILL, not a polite stop) leaves no partial bundle; running again ends
# with exactly the right rows. Into SQLite and into SQL Server (the server rolls back the dead session's transaction).
BeforeDiscovery {
    $script:Destinations = @(@{ Kind = 'SQLite' }, @{ Kind = 'SqlServer' })
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.Sqlite and Microsoft.Data.SqlClient for the queries
}

Describe 'A load killed mid-bundle (<Kind>)' -ForEach $Destinations {
    It 'leaves only whole bundles, and a rerun loads exactly the rest' {
        $dest = New-TestDestination $Kind
        if ($dest.SkipReason) { Set-ItResult -Skipped -Because $dest.SkipReason; return }
        $to = $dest.Params
        $emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '4000')
        try {
            $bundles = (Invoke-Emulator $emulator '/_emulator/dataset').bundles
            # The second bundle trickles in, so the kill lands while its transaction is open.
            Invoke-Emulator $emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; BundleId = $bundles[1].Id; Kind = 'Slow'; BytesPerSecond = 40000; Times = 1 }) | Out-Null
            $script = "Import-Module '$ModulePath'; Connect-FullStory -ApiKey '$($emulator.ApiKey)' -BaseUri '$($emulator.BaseUri)'; Get-FullStoryBundle -Start 2000-01-01 | Export-FullStoryEvents $($dest.Argument)"
            $exe = [Environment]::ProcessPath
            $psi = [System.Diagnostics.ProcessStartInfo]::new($exe)
            if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $psi.ArgumentList.Add((Join-Path $PSHOME 'pwsh.dll')) }
            foreach ($a in '-NoProfile', '-NonInteractive', '-Command', $script) { $psi.ArgumentList.Add($a) }
            $psi.RedirectStandardOutput = $true; $psi.UseShellExecute = $false
            $p = [System.Diagnostics.Process]::Start($psi)
            # The emulator logs a request when it ends: once the first bundle is served, the second (about 11 s at this
            # rate) is being trickled into its open transaction.
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            do {
                Start-Sleep -Milliseconds 100
                $served = (Invoke-Emulator $emulator '/_emulator/stats').requests | Where-Object { $_.endpoint -eq 'get' -and $_.bundleId -eq $bundles[0].Id }
            } until ($served -or [DateTime]::UtcNow -gt $deadline)
            Start-Sleep -Milliseconds 2500
            $p.HasExited | Should -BeFalse
            $p.Kill($true)
            $p.WaitForExit()

            Invoke-DestinationQuery $dest 'select count(*) from {events}' | Should -Be 4000
            Invoke-DestinationQuery $dest "select count(*) from fullstory_sync_state where table_name = '{table}'" | Should -Be 1
            Invoke-DestinationQuery $dest "select max(batch_key) from fullstory_sync_state where table_name = '{table}'" | Should -Be "bundle:$($bundles[0].Id)"

            Invoke-Emulator $emulator '/_emulator/reset' -Method Post | Out-Null
            Connect-FullStory -ApiKey $emulator.ApiKey -BaseUri $emulator.BaseUri -WarningAction SilentlyContinue
            $reports = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Export-FullStoryEvents @to
            ($reports | Where-Object { -not $_.AlreadyLoaded }).BatchKey | Should -Be @("bundle:$($bundles[1].Id)", "bundle:$($bundles[2].Id)")
            ($reports | Where-Object AlreadyLoaded).BatchKey | Should -Be "bundle:$($bundles[0].Id)"
            Invoke-DestinationQuery $dest 'select count(*) from {events}' | Should -Be 12000
            Invoke-DestinationQuery $dest 'select count(*) from (select _fs_batch from {events} group by _fs_batch having count(*) = 4000) as b' | Should -Be 3
        }
        finally {
            Stop-TestEmulator $emulator
            Disconnect-FullStory
            Remove-TestDestination $dest
        }
    }
}
