# The SQL Server path end to end, the module in real pwsh against a live server (FULLSTORY_SQLSERVER_CONNECTION_STRING;
# build.ps1 -Task Test starts the TDS stand-in when ../shared/tds is beside the repository). What SQLite and SQL Server
# share (nothing lost, scheduled syncs, a killed load) runs against both in NothingLost, Sync and Crash.Tests.ps1; this
# file has what is SQL Server's own: Segment Export windows, concurrent syncs, typed custom var columns, -Schema, hostile
# names and values. Where the stand-in is known to differ from SQL Server, that case is skipped with the reason.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.SqlClient for Invoke-SqlServerQuery
    $script:Server = Get-TestSqlServer
    $script:Sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'

    # A bundle-format JSON file of events copied from the sample, each with the given custom vars added.
    function New-EventFile([hashtable[]] $CustomVars) {
        $base = (Get-Content -Raw $Sample | ConvertFrom-Json -AsHashtable)[1]
        $events = foreach ($vars in $CustomVars) {
            $e = [ordered]@{}
            foreach ($k in $base.Keys) { $e[$k] = $base[$k] }
            foreach ($k in $vars.Keys) { $e[$k] = $vars[$k] }
            $e
        }
        $file = Join-Path ([IO.Path]::GetTempPath()) "fs-events-$([guid]::NewGuid().ToString('N')).json"
        [IO.File]::WriteAllText($file, (ConvertTo-Json -InputObject @($events) -Depth 5), [Text.UTF8Encoding]::new($false))
        $file
    }
}

Describe 'SQL Server: Segment Export windows' {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '500')
        $script:Dataset = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
        $script:Dest = New-TestDestination SqlServer
    }
    AfterAll { Stop-TestEmulator $Emulator; Disconnect-FullStory; Remove-TestDestination $Dest }

    It 'loads every window once, each as one batch; the next run adds nothing' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05' -WarningAction SilentlyContinue
        $to = $Dest.Params
        $start = [DateTimeOffset]::FromUnixTimeSeconds([long]$Dataset[0].Start).UtcDateTime
        $total = ($Dataset | Measure-Object EventCount -Sum).Sum
        $first = Sync-FullStoryEvents @to -Api SegmentExport -Start $start -WindowSize (New-TimeSpan -Days 1) -Lag (New-TimeSpan -Hours 12)
        $first.Outcome | Should -Be 'Succeeded' -Because $first.Error
        $first.Rows | Should -Be $total
        $first.Batches | Should -BeGreaterOrEqual 3
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be $total
        Invoke-DestinationQuery $Dest "select count(*) from {events} where _fs_batch not like 'export:everyone:%'" | Should -Be 0
        Invoke-DestinationQuery $Dest 'select count(*) from (select distinct _fs_batch, _fs_index from {events}) as ids' | Should -Be $total
        Invoke-DestinationQuery $Dest "select count(*) from fullstory_sync_state where table_name = '{table}' and is_complete = 1" | Should -Be $first.Batches

        $second = Sync-FullStoryEvents @to -Api SegmentExport -Start $start -WindowSize (New-TimeSpan -Days 1) -Lag (New-TimeSpan -Hours 12)
        $second.Outcome | Should -Be 'Succeeded'
        $second.Rows | Should -Be 0
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be $total
        $history = @(Get-FullStorySyncHistory @to)
        $history.Count | Should -Be 2
        $history.Api | Should -Be @('SegmentExport', 'SegmentExport')
    }
}

Describe 'SQL Server: two syncs of one table at once (-LockWait <LockWait>)' -ForEach @(
    @{ LockWait = '00:00:01'; StandIn = '' }
    @{ LockWait = '00:00:00'; StandIn = '7' }
) {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '1000')
        $script:Dataset = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
        $script:Dest = New-TestDestination SqlServer
    }
    AfterAll { Stop-TestEmulator $Emulator; Remove-TestDestination $Dest }

    It 'loads one copy: the run holding the lock loads everything, the other is Skipped' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        if ($StandIn -and ($reason = Get-StandInDifference $StandIn)) { Set-ItResult -Skipped -Because $reason; return }
        # The first bundle trickles in, so whichever run takes the lock is still loading when the other asks for it.
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; BundleId = $Dataset[0].Id; Kind = 'Slow'; BytesPerSecond = 100000; Times = 1 }) | Out-Null
        $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$ModulePath'
Connect-FullStory -BaseUri '$($Emulator.BaseUri)' -RetryDelay 00:00:00.05
Sync-FullStoryEvents $($Dest.Argument) -Start 2000-01-01 -LockWait $LockWait -WarningAction SilentlyContinue | Select-Object Outcome, Rows, Message | ConvertTo-Json -Compress
"@
        $env = @{ FULLSTORY_API_KEY = $Emulator.ApiKey }
        $runs = @((Start-FreshPwsh $script $env), (Start-FreshPwsh $script $env)) | ForEach-Object { Wait-FreshPwsh $_ }
        $summaries = $runs | ForEach-Object {
            $_.ExitCode | Should -Be 0 -Because $_.Errors
            ($_.Output -split "`n" | Where-Object { $_ -like '{*' } | Select-Object -Last 1) | ConvertFrom-Json
        }
        @($summaries.Outcome | Sort-Object) | Should -Be @('Skipped', 'Succeeded')
        ($summaries | Where-Object Outcome -eq 'Skipped').Message | Should -Match 'Another sync'
        ($summaries | Where-Object Outcome -eq 'Succeeded').Rows | Should -Be 3000
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be 3000
        Invoke-DestinationQuery $Dest 'select count(*) from (select distinct _fs_batch, _fs_index from {events}) as ids' | Should -Be 3000
    }
}

Describe 'SQL Server: -CustomVarColumns' {
    BeforeEach { $script:Dest = New-TestDestination SqlServer; $script:Files = @() }
    AfterEach { Remove-TestDestination $Dest; $Files | Remove-Item -ErrorAction SilentlyContinue }

    It 'gives each custom var a typed column, adds columns as new keys appear, and keeps misfits in CustomVars' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        $to = $Dest.Params
        $first = New-EventFile @(
            @{ evt_name_str = 'apple'; evt_qty_int = 3; evt_price_real = 4.5; evt_ok_bool = $true; evt_when_date = '2020-08-27T06:20:26.901Z'; evt_tags_strs = @('a', 'b') }
            @{ evt_name_str = 'pear'; evt_qty_int = 5 }
        )
        $script:Files += $first
        $r1 = Receive-FullStoryEvent -Path $first | Export-FullStoryEvent @to -CustomVarColumns
        $r1.Rows | Should -Be 2
        @($r1.ColumnsAdded | Sort-Object) | Should -Be @('evt_name_str', 'evt_ok_bool', 'evt_price_real', 'evt_qty_int', 'evt_tags_strs', 'evt_when_date')
        $types = @{}
        Invoke-SqlServerQuery -Rows -Parameters @{ t = $Dest.Table } -Query "SELECT COLUMN_NAME AS n, DATA_TYPE AS t, CHARACTER_MAXIMUM_LENGTH AS l, DATETIME_PRECISION AS p FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = N'dbo' AND TABLE_NAME = @t" |
            ForEach-Object { $types[$_.n] = "$($_.t)$(if ($_.l -eq -1) { '(max)' } elseif ($_.t -eq 'datetime2') { "($($_.p))" })" }
        $types['evt_name_str'] | Should -Be 'nvarchar(max)'
        $types['evt_qty_int'] | Should -Be 'bigint'
        $types['evt_price_real'] | Should -Be 'float'
        $types['evt_ok_bool'] | Should -Be 'bit'
        $types['evt_when_date'] | Should -Be 'datetime2(3)'
        $types['evt_tags_strs'] | Should -Be 'nvarchar(max)'
        $row = Invoke-DestinationQuery $Dest "select concat(evt_name_str, '|', evt_qty_int, '|', evt_price_real, '|', cast(evt_ok_bool as int), '|', convert(nvarchar(30), evt_when_date, 121)) from {events} where evt_name_str = N'apple'"
        $row | Should -Be 'apple|3|4.5|1|2020-08-27 06:20:26.901'

        # A later load: a new key gets its column; a value that does not fit its column stays in CustomVars only.
        $second = New-EventFile @(@{ evt_qty_int = 'not a number'; evt_new_str = 'late' })
        $script:Files += $second
        $r2 = Receive-FullStoryEvent -Path $second | Export-FullStoryEvent @to -CustomVarColumns
        $r2.ColumnsAdded | Should -Be @('evt_new_str')
        Invoke-DestinationQuery $Dest "select count(*) from {events} where evt_new_str = N'late' and evt_qty_int is null and CustomVars like N'%not a number%'" | Should -Be 1
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be 3
    }
}

Describe 'SQL Server: -Schema' {
    BeforeAll {
        $script:SchemaName = "fs_$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '300')
        if (-not $Server.SkipReason) { Invoke-SqlServerQuery "EXEC(N'CREATE SCHEMA [$SchemaName]');" | Out-Null }
    }
    AfterAll {
        Stop-TestEmulator $Emulator; Disconnect-FullStory
        if (-not $Server.SkipReason) {
            Invoke-SqlServerQuery @"
SET LOCK_TIMEOUT 60000;
IF OBJECT_ID(N'[$SchemaName].[events]', N'U') IS NOT NULL DROP TABLE [$SchemaName].[events];
IF OBJECT_ID(N'[$SchemaName].[fullstory_sync_state]', N'U') IS NOT NULL DROP TABLE [$SchemaName].[fullstory_sync_state];
IF OBJECT_ID(N'[$SchemaName].[fullstory_sync_runs]', N'U') IS NOT NULL DROP TABLE [$SchemaName].[fullstory_sync_runs];
EXEC(N'DROP SCHEMA [$SchemaName]');
"@ | Out-Null
        }
    }

    It 'keeps the events, the state and the run history in that schema' {
        if ($Server.SkipReason) { Set-ItResult -Skipped -Because $Server.SkipReason; return }
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -WarningAction SilentlyContinue
        $sync = Sync-FullStoryEvent -ConnectionString $Server.ConnectionString -Schema $SchemaName -Start 2000-01-01 -WarningAction SilentlyContinue
        $sync.Outcome | Should -Be 'Succeeded' -Because $sync.Error
        $sync.Rows | Should -Be 600
        $sync.Table | Should -Be "$SchemaName.events"
        Invoke-SqlServerQuery "SELECT COUNT(*) FROM [$SchemaName].[events];" | Should -Be 600
        Invoke-SqlServerQuery "SELECT COUNT(*) FROM [$SchemaName].[fullstory_sync_state] WHERE table_name = N'events' AND is_complete = 1;" | Should -Be 2
        $history = @(Get-FullStorySyncHistory -ConnectionString $Server.ConnectionString -Schema $SchemaName)
        $history.Count | Should -Be 1
        $history[0].Rows | Should -Be 600
        $history[0].Table | Should -Be "$SchemaName.events"
    }

    It 'refuses a schema that does not exist, naming it and what to do' {
        if ($Server.SkipReason) { Set-ItResult -Skipped -Because $Server.SkipReason; return }
        $err = $null
        Receive-FullStoryEvent -Path $Sample | Export-FullStoryEvent -ConnectionString $Server.ConnectionString -Schema 'no_such_schema_x' -ErrorVariable err -ErrorAction SilentlyContinue | Out-Null
        ($err | Out-String) | Should -Match "schema 'no_such_schema_x' does not exist"
        ($err | Out-String) | Should -Match 'CREATE SCHEMA'
    }
}

Describe 'SQL Server: hostile custom var names and values (<Case>)' -ForEach @(
    @{ Case = 'quotes, semicolons, comments'; Key = "evt_it's `"quoted`"; DROP TABLE events;--_str"; Value = "O'Brien `"the`" [boss]; DROP TABLE events;--"; StandIn = 0 }
    @{ Case = 'brackets'; Key = 'evt_x]; DROP TABLE events;--_str'; Value = 'a ] b [ c'; StandIn = 3 }
    @{ Case = '160-character name'; Key = 'evt_' + ('n' * 152) + '_str'; Value = 'long name'; StandIn = 1 }
    @{ Case = 'emoji value, non-ASCII name'; Key = 'evt_日本語_é_str'; Value = '🍎 fruit 𝄞 👨‍👩'; StandIn = 0 }
    @{ Case = 'emoji name'; Key = 'evt_🍎_str'; Value = '🍎 fruit'; StandIn = 'NonBmpNames' }
    @{ Case = 'CR/LF'; Key = 'evt_note_str'; Value = "line1`r`nline2`nline3"; StandIn = 0 }
    @{ Case = '2^62'; Key = 'evt_big_int'; Value = [long]4611686018427387904; StandIn = 0 }
) {
    BeforeEach { $script:Dest = New-TestDestination SqlServer; $script:File = $null }
    AfterEach { Remove-TestDestination $Dest; if ($File) { Remove-Item $File -ErrorAction SilentlyContinue } }

    It 'lands in a column of its own, intact, and every table survives' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        if ($StandIn -and ($reason = Get-StandInDifference $StandIn)) { Set-ItResult -Skipped -Because $reason; return }
        $to = $Dest.Params
        $script:File = New-EventFile @(@{ $Key = $Value; evt_plain_str = 'plain' })
        $report = Receive-FullStoryEvent -Path $File | Export-FullStoryEvent @to -CustomVarColumns
        $report.Rows | Should -Be 1
        $column = @($report.ColumnsAdded | Where-Object { $_ -ne 'evt_plain_str' })
        $column.Count | Should -Be 1
        if ($Key.Length -le 128) { $column[0] | Should -BeExactly $Key } else { $column[0].Length | Should -BeLessOrEqual 128 }
        Invoke-SqlServerQuery -Parameters @{ t = $Dest.Table; c = $column[0] } -Query "SELECT COUNT(*) FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = N'dbo' AND TABLE_NAME = @t AND COLUMN_NAME = @c;" | Should -Be 1
        $quoted = '[' + $column[0].Replace(']', ']]') + ']'
        if ($Value -is [long]) {
            Invoke-DestinationQuery $Dest "select $quoted from {events}" | Should -Be $Value
        }
        else {
            Invoke-DestinationQuery $Dest "select cast($quoted as nvarchar(4000)) from {events}" | Should -BeExactly $Value
        }
        Invoke-DestinationQuery $Dest "select evt_plain_str from {events}" | Should -Be 'plain'
        # The value is in CustomVars too, verbatim JSON.
        $json = Invoke-DestinationQuery $Dest 'select cast(CustomVars as nvarchar(4000)) from {events}' | ConvertFrom-Json -AsHashtable
        $json[$Key] | Should -Be $Value
        # Nothing was dropped: the bookkeeping tables are still there.
        Invoke-SqlServerQuery "SELECT COUNT(*) FROM sys.tables WHERE name IN (N'fullstory_sync_state', N'$($Dest.Table)');" | Should -Be 2
    }
}

Describe 'SQL Server: -CommandTimeout' {
    It 'takes a time span for Export and Sync, and refuses a bare number or zero before anything runs' {
        $cs = 'Server=127.0.0.1,1;Database=x;User Id=u;Password=p;Connect Timeout=1'
        { Receive-FullStoryEvent -Path $Sample | Export-FullStoryEvent -ConnectionString $cs -CommandTimeout 30 -ErrorAction Stop } | Should -Throw '*has no unit*'
        { Sync-FullStoryEvent -ConnectionString $cs -CommandTimeout '00:00:00' -ErrorAction Stop } | Should -Throw '*must be positive*'
        (Get-Command Export-FullStoryEvent).Parameters['CommandTimeout'].ParameterType | Should -Be ([timespan])
        (Get-Command Sync-FullStoryEvent).Parameters['CommandTimeout'].ParameterSets.Keys | Should -Be @('SqlServer')
    }

    It 'bounds a load that waits for the server: it ends with the batch rolled back and an error naming it' {
        if ($Server.SkipReason) { Set-ItResult -Skipped -Because $Server.SkipReason; return }
        $dest = New-TestDestination SqlServer
        $signal = Join-Path ([IO.Path]::GetTempPath()) "fs-locked-$([guid]::NewGuid().ToString('N'))"
        $blocker = $null
        try {
            $to = $dest.Params
            Receive-FullStoryEvent -Path $Sample | Select-Object -First 5 | Export-FullStoryEvent @to | Out-Null
            # Another session alters the table in a transaction it keeps open: every statement on the table waits for it.
            $blocker = Start-FreshPwsh @"
`$c = [System.Data.SqlClient.SqlConnection]::new('$($Server.ConnectionString -replace "'", "''")'); `$c.Open()
`$t = `$c.BeginTransaction(); `$cmd = `$c.CreateCommand(); `$cmd.Transaction = `$t
`$cmd.CommandText = 'ALTER TABLE [dbo].[$($dest.Table)] ADD blocker_probe int NULL;'; [void]`$cmd.ExecuteNonQuery()
Set-Content '$signal' 'locked'
Start-Sleep -Seconds 120
"@
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while (-not (Test-Path $signal) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            Test-Path $signal | Should -BeTrue -Because 'the blocking session must hold its lock first'
            $err = $null
            $reports = Receive-FullStoryEvent -Path $Sample | Export-FullStoryEvent @to -CommandTimeout '00:00:03' -ErrorVariable err -ErrorAction SilentlyContinue
            $reports | Should -BeNullOrEmpty
            ($err | Out-String) | Should -Match 'did not answer within the timeout'
            ($err | Out-String) | Should -Match 'file:'
            ($err | Out-String) | Should -Match 'run the command again'
            $blocker.Process.Kill($true); $blocker.Process.WaitForExit()
            Invoke-DestinationQuery $dest 'select count(*) from {events}' | Should -Be 5 # nothing of the failed load
        }
        finally {
            if ($blocker -and -not $blocker.Process.HasExited) { $blocker.Process.Kill($true) }
            Remove-Item $signal -ErrorAction SilentlyContinue
            Remove-TestDestination $dest
        }
    }
}
