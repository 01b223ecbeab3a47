# The Parquet lake destination in real pwsh processes, read back by DuckDB (an independent engine, in its own process):
# exact per-day counts, 64-bit ids, millisecond timestamps, reruns, kill -9 mid-batch, concurrent syncs.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
}

Describe 'Sync-FullStoryEvent -ParquetPath' {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '2000')
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -WarningAction SilentlyContinue
        $script:Bundles = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
        $script:Total = ($Bundles | Measure-Object -Property EventCount -Sum).Sum
        # What FullStory holds, per UTC day of EventStart, counted from the events the emulator serves.
        $script:PerDay = @{}
        foreach ($b in $Bundles) {
            foreach ($e in (Invoke-Emulator $Emulator "/_emulator/events?bundleId=$($b.Id)")) {
                $day = ([datetime]$e.EventStart).ToUniversalTime().ToString('yyyy-MM-dd', [cultureinfo]::InvariantCulture)
                $PerDay[$day] = 1 + ($PerDay[$day] ?? 0)
            }
        }
    }
    AfterAll { Stop-TestEmulator $Emulator; Disconnect-FullStory }
    BeforeEach { $script:Lake = Join-Path ([IO.Path]::GetTempPath()) "lake-$([guid]::NewGuid().ToString('N').Substring(0, 8))" }
    AfterEach { Remove-Item $Lake -Recurse -Force -ErrorAction SilentlyContinue }

    It 'lands every event once, partitioned by day, typed, and a rerun adds nothing' {
        $first = Sync-FullStoryEvents -ParquetPath $Lake -Start 2000-01-01 -WarningAction SilentlyContinue
        $first.Outcome | Should -Be 'Succeeded'
        $first.Rows | Should -Be $Total
        $first.Destination | Should -Be "parquet:$Lake"

        $days = Invoke-LakeQuery $Lake 'SELECT CAST(event_date AS VARCHAR) AS d, count(*) AS n FROM {events} GROUP BY ALL ORDER BY d'
        $days.Count | Should -Be $PerDay.Count
        foreach ($d in $days) { $d.n | Should -Be $PerDay[$d.d] -Because "the events of $($d.d)" }
        (Invoke-LakeQuery $Lake 'SELECT count(DISTINCT (_fs_batch, _fs_index)) AS n FROM {events}')[0].n | Should -Be $Total

        $types = Invoke-LakeQuery $Lake 'SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {events})'
        ($types | Where-Object column_name -eq 'UserId').column_type | Should -Be 'BIGINT'
        ($types | Where-Object column_name -eq 'EventStart').column_type | Should -Be 'TIMESTAMP WITH TIME ZONE'

        # 64-bit ids and millisecond timestamps exactly as FullStory sent them.
        $sent = (Invoke-Emulator $Emulator "/_emulator/events?bundleId=$($Bundles[1].Id)")[7]
        $row = Invoke-LakeQuery $Lake "SELECT UserId, strftime(EventStart, '%Y-%m-%dT%H:%M:%S.%gZ') AS t FROM {events} WHERE _fs_batch = 'bundle:$($Bundles[1].Id)' AND _fs_index = 7"
        $row[0].UserId | Should -Be $sent.UserId
        # (Invoke-RestMethod reads the emulator's ISO strings as DateTime values.)
        $row[0].t | Should -Be (([datetime]$sent.EventStart).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [cultureinfo]::InvariantCulture))

        $files = Get-ChildItem (Join-Path $Lake 'events') -Recurse -File
        $files | ForEach-Object { $_.Directory.Name | Should -Match '^event_date=\d{4}-\d{2}-\d{2}$' }
        $names = $files.FullName | Sort-Object

        $again = Sync-FullStoryEvents -ParquetPath $Lake -Start 2000-01-01 -WarningAction SilentlyContinue
        $again.Rows | Should -Be 0
        (Get-ChildItem (Join-Path $Lake 'events') -Recurse -File).FullName | Sort-Object | Should -Be $names

        $history = Get-FullStorySyncHistory -ParquetPath $Lake
        $history.Count | Should -Be 2
        $history[1].Rows | Should -Be $Total
    }

    It 'Export from bundles and from a filtered pipeline: the whole bundle replaces the filtered part' {
        $bundle = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1
        $clicks = $bundle | Receive-FullStoryEvent | Where-Object EventType -eq click | Export-FullStoryEvent -ParquetPath $Lake
        $clicks.IsComplete | Should -BeFalse
        $whole = $bundle | Export-FullStoryEvent -ParquetPath $Lake
        $whole.ReplacedRows | Should -Be $clicks.Rows
        (Invoke-LakeQuery $Lake 'SELECT count(*) AS n, count(DISTINCT _fs_index) AS d FROM {events}')[0] | ForEach-Object { $_.n | Should -Be 2000; $_.d | Should -Be 2000 }
    }

    It 'a pwsh killed mid-batch leaves whole batches only, and the rerun lands exactly the rest' {
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; BundleId = $Bundles[1].Id; Kind = 'Slow'; BytesPerSecond = 30000; Times = 1 }) | Out-Null
        try {
            $script = "Import-Module '$ModulePath'; Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)' -WarningAction SilentlyContinue; Sync-FullStoryEvents -ParquetPath '$Lake' -Start 2000-01-01 -WarningAction SilentlyContinue"
            $p = (Start-FreshPwsh $script).Process
            # Kill once the first bundle is committed (its record written), while the second trickles into staged files.
            $records = Join-Path $Lake '_fullstory/tables/events/batches'
            $deadline = [DateTime]::UtcNow.AddSeconds(120)
            do { Start-Sleep -Milliseconds 100 } until (@(Get-ChildItem $records -Filter *.json -ErrorAction SilentlyContinue).Count -ge 1 -or [DateTime]::UtcNow -gt $deadline)
            Start-Sleep -Milliseconds 1500
            @(Get-ChildItem (Join-Path $Lake '_fullstory/tables/events/staging') -Recurse -File -ErrorAction SilentlyContinue).Count | Should -BeGreaterThan 0 -Because 'the second bundle is being written'
            $p.HasExited | Should -BeFalse
            $p.Kill($true)
            $p.WaitForExit()
        }
        finally { Invoke-Emulator $Emulator '/_emulator/reset' -Method Post | Out-Null }

        $after = Invoke-LakeQuery $Lake 'SELECT _fs_batch AS k, count(*) AS n FROM {events} GROUP BY ALL'
        @($after).Count | Should -Be 1
        $after[0].k | Should -Be "bundle:$($Bundles[0].Id)"
        $after[0].n | Should -Be 2000

        $rerun = Sync-FullStoryEvents -ParquetPath $Lake -Start 2000-01-01 -WarningAction SilentlyContinue
        $rerun.Rows | Should -Be ($Total - 2000)
        $counts = Invoke-LakeQuery $Lake 'SELECT _fs_batch AS k, count(*) AS n, count(DISTINCT _fs_index) AS d FROM {events} GROUP BY ALL'
        @($counts).Count | Should -Be 3
        $counts | ForEach-Object { $_.n | Should -Be 2000; $_.d | Should -Be 2000 }
        Get-ChildItem (Join-Path $Lake '_fullstory/tables/events/staging') -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        # The history counts exactly what each run committed: the killed run its one bundle, the rerun the other two.
        $killed = Get-FullStorySyncHistory -ParquetPath $Lake | Where-Object Outcome -eq 'Failed'
        ($killed.Batches, $killed.Rows) | Should -Be @(1, 2000)
        (Get-FullStorySyncHistory -ParquetPath $Lake | Measure-Object Rows -Sum).Sum | Should -Be $Total
    }

    It 'two concurrent syncs into one folder: one copy' {
        $script = "Import-Module '$ModulePath'; Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)' -WarningAction SilentlyContinue; (Sync-FullStoryEvents -ParquetPath '$Lake' -Start 2000-01-01 -LockWait (New-TimeSpan -Minutes 3) -WarningAction SilentlyContinue).Rows"
        $jobs = 1..2 | ForEach-Object { Start-ThreadJob -ScriptBlock { param($s) Invoke-FreshPwsh -Script $s } -ArgumentList $script -InitializationScript ([scriptblock]::Create("Import-Module '$PSScriptRoot/TestHelpers.psm1'")) }
        $results = $jobs | Wait-Job | Receive-Job
        $results | ForEach-Object { $_.ExitCode | Should -Be 0 }
        ($results | ForEach-Object { [long]($_.Output.Trim() -split "`n")[-1] } | Measure-Object -Sum).Sum | Should -Be $Total
        $counts = Invoke-LakeQuery $Lake 'SELECT _fs_batch AS k, count(*) AS n FROM {events} GROUP BY ALL'
        @($counts).Count | Should -Be 3
        $counts | ForEach-Object { $_.n | Should -Be 2000 }
        (Get-FullStorySyncHistory -ParquetPath $Lake).Outcome | Should -Be @('Succeeded', 'Succeeded')
    }
}
