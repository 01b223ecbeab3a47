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
            $p = (Start-FreshPwsh $script).Process
            # Kill once the first bundle is committed (its record is in the state table), while the second (about 11 s at
            # this rate) trickles into its open transaction. Waiting on the record, not on a fixed time: a busy machine
            # can take seconds to load the first bundle.
            $deadline = [DateTime]::UtcNow.AddSeconds(120)
            do {
                Start-Sleep -Milliseconds 200
                $recorded = try { Invoke-DestinationQuery $dest "select count(*) from fullstory_sync_state where table_name = '{table}'" } catch { 0 }
            } until ($recorded -ge 1 -or $p.HasExited -or [DateTime]::UtcNow -gt $deadline)
            Start-Sleep -Milliseconds 1000
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
