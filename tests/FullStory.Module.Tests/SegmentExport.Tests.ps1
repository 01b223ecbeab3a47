# Segment Export at production scale, as a user runs it: a backfill with several exports in flight against an emulator
# whose exports take time and which limits how many run at once; interrupted by kill -9 and by Ctrl+C; Receive over
# many windows; parameters that would run away.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.Sqlite for Invoke-SqliteQuery
    # 41 days of data ending the day before yesterday; exports take a second; at most 4 run at once.
    $script:Start = [datetime]::UtcNow.Date.AddDays(-41)
    $script:StartText = $Start.ToString('yyyy-MM-ddTHH:mm:ssZ')
    $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '40', '--events-per-bundle', '200', '--first-bundle-start', $StartText,
        '--export-seconds', '1', '--max-running-exports', '4')
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "segexp-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    New-Item -ItemType Directory $Dir | Out-Null
    $script:Connect = "Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)' -RetryDelay 00:00:00.05 -PollInterval 00:00:00.2"

    function script:Get-EmulatorCount([datetime] $From, [datetime] $To) {
        (Invoke-Emulator $Emulator "/_emulator/events/count?start=$($From.ToString('yyyy-MM-ddTHH:mm:ssZ'))&end=$($To.ToString('yyyy-MM-ddTHH:mm:ssZ'))").count
    }
    function script:Get-Windows([string] $Db) {
        $sqlite = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -First 1
        $c = [Activator]::CreateInstance($sqlite.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true), @("Data Source=$Db;Mode=ReadOnly"))
        try {
            $c.Open()
            $cmd = $c.CreateCommand()
            $cmd.CommandText = "select batch_key, range_start, range_end, row_count from fullstory_sync_state order by range_start"
            $r = $cmd.ExecuteReader()
            while ($r.Read()) {
                [pscustomobject]@{ Key = $r.GetString(0); Start = [datetime]::Parse($r.GetString(1)).ToUniversalTime(); End = [datetime]::Parse($r.GetString(2)).ToUniversalTime(); Rows = $r.GetInt64(3) }
            }
        }
        finally { $c.Dispose() }
    }
    function script:Get-StateCount([string] $Db) {
        if (-not (Test-Path $Db)) { return 0 }
        try { [int](Invoke-SqliteQuery -Path $Db -Query 'select count(*) from fullstory_sync_state') } catch { 0 }
    }
    # Whole windows only: contiguous from -Start, each with exactly the emulator's events, no row outside a recorded window.
    function script:Assert-WholeWindows([string] $Db) {
        $windows = @(Get-Windows $Db)
        $windows[0].Start | Should -Be $Start
        for ($i = 1; $i -lt $windows.Count; $i++) { $windows[$i].Start | Should -Be $windows[$i - 1].End }
        foreach ($w in $windows) {
            $w.Rows | Should -Be (Get-EmulatorCount $w.Start $w.End) -Because $w.Key
            Invoke-SqliteQuery -Path $Db -Query "select count(*) from events where _fs_batch = '$($w.Key)'" | Should -Be $w.Rows -Because $w.Key
        }
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from events where _fs_batch not in (select batch_key from fullstory_sync_state)' | Should -Be 0
        $windows
    }
}
AfterAll {
    Stop-TestEmulator $Emulator
    Disconnect-FullStory
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'A Segment Export backfill' {
    AfterEach { Invoke-Emulator $Emulator '/_emulator/faults' -Method Delete | Out-Null }

    It 'killed with kill -9 mid-backfill leaves whole windows, and the next run resumes exactly after them' {
        $db = Join-Path $Dir 'killed.db'
        # Downloads trickle in, so the kill lands while a window is being loaded.
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'download'; Kind = 'Slow'; BytesPerSecond = 150000; Times = 0 }) | Out-Null
        $script = "Import-Module '$ModulePath'; $Connect; Sync-FullStoryEvent -Path '$db' -Api SegmentExport -Start '$StartText'"
        $p = (Start-FreshPwsh $script).Process
        try {
            $deadline = [DateTime]::UtcNow.AddMinutes(2)
            while ((Get-StateCount $db) -lt 2 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            $p.HasExited | Should -BeFalse
            $p.Kill($true) # SIGKILL: no chance to clean up
            $p.WaitForExit()
        }
        finally { if (-not $p.HasExited) { $p.Kill($true) } }

        $kept = @(Assert-WholeWindows $db)
        $kept.Count | Should -BeGreaterOrEqual 2
        $kept.Count | Should -BeLessThan 10
        ($kept[0].End - $kept[0].Start) | Should -Be ([timespan]::FromDays(7)) # backfill windows are weeks

        Invoke-Emulator $Emulator '/_emulator/faults' -Method Delete | Out-Null
        $rerun = Invoke-FreshPwsh -Script @"
Import-Module '$ModulePath'; $Connect
`$s = Sync-FullStoryEvent -Path '$db' -Api SegmentExport -Start '$StartText'
'RESULT ' + (@{ Outcome = `$s.Outcome; First = `$s.Loaded[0].BatchKey; Batches = `$s.Batches } | ConvertTo-Json -Compress)
"@
        $rerun.ExitCode | Should -Be 0 -Because $rerun.Errors
        $result = ($rerun.Output -split "`n" | Where-Object { $_ -like 'RESULT *' }).Substring(7) | ConvertFrom-Json
        $result.Outcome | Should -Be 'Succeeded'
        $result.First | Should -BeLike "export:everyone:$($kept[-1].End.ToString('yyyy-MM-ddTHH:mm:ssZ'))/*" # exactly after the last whole window
        $all = @(Assert-WholeWindows $db)
        $all.Count | Should -Be 10 # five weeks, then five days up to now - 1 day
        $result.Batches | Should -Be (10 - $kept.Count)
        Invoke-SqliteQuery -Path $db -Query 'select count(*) from events' | Should -Be (Get-EmulatorCount $Start $all[-1].End)
        $killed = Get-FullStorySyncHistory -Path $db | Where-Object Outcome -eq 'Failed'
        $killed.Error | Should -Match 'did not finish'
        # Exactly what the killed run committed, even a window committed a moment before the kill.
        ($killed.Batches, $killed.Rows) | Should -Be @($kept.Count, ($kept | Measure-Object Rows -Sum).Sum)
    }

    It 'stopped with Ctrl+C is recorded as Cancelled, with exactly what was committed' {
        $db = Join-Path $Dir 'stopped.db'
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'download'; Kind = 'Slow'; BytesPerSecond = 150000; Times = 0 }) | Out-Null
        $ps = [powershell]::Create()
        try {
            # -Verbose and progress on: once stopping, PowerShell refuses every Write, also right after a commit.
            $ps.AddScript("Import-Module '$ModulePath'; $Connect; Sync-FullStoryEvent -Path '$db' -Api SegmentExport -Start '$StartText' -Verbose") | Out-Null
            $async = $ps.BeginInvoke()
            $deadline = [DateTime]::UtcNow.AddMinutes(2)
            while ((Get-StateCount $db) -lt 2 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $ps.Dispose() }

        $kept = @(Assert-WholeWindows $db)
        $run = Get-FullStorySyncHistory -Path $db -Last 1
        $run.Outcome | Should -Be 'Cancelled'
        $run.Batches | Should -Be $kept.Count
        $run.Rows | Should -Be (Invoke-SqliteQuery -Path $db -Query 'select count(*) from events')
        if ($run.Error -match '(export:everyone:\S+) was being loaded and was rolled back') { $kept.Key | Should -Not -Contain $Matches[1] }
    }

    It 'refuses a window size that would run away, and a bare number' {
        $db = Join-Path $Dir 'refused.db'
        $exportsBefore = (Invoke-Emulator $Emulator '/_emulator/stats').exports.list.Count
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri
        { Sync-FullStoryEvent -Path $db -Api SegmentExport -WindowSize 00:00:00.001 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError*' -ExpectedMessage '*one minute*'
        { Sync-FullStoryEvent -Path $db -Api SegmentExport -WindowSize 60 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError*' -ExpectedMessage '*no unit*New-TimeSpan -Minutes 60*'
        { Sync-FullStoryEvent -Path $db -Api SegmentExport -WindowSize '60' -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError*' -ExpectedMessage '*no unit*'
        { Sync-FullStoryEvent -Path $db -Api SegmentExport -LockWait 10 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError*'
        Test-Path $db | Should -BeFalse
        (Invoke-Emulator $Emulator '/_emulator/stats').exports.list.Count | Should -Be $exportsBefore -Because 'nothing was asked of FullStory'
    }

    It 'accepts a time span as a string and loads windows of that size' {
        $db = Join-Path $Dir 'halfdays.db'
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -PollInterval 00:00:00.2
        $s = Sync-FullStoryEvent -Path $db -Api SegmentExport -Start $Start.AddDays(35) -WindowSize '12:00:00' -ThrottleLimit 2
        $s.Outcome | Should -Be 'Succeeded'
        $s.Loaded | ForEach-Object { $_.BatchKey } | Should -Be (0..($s.Batches - 1) | ForEach-Object { "export:everyone:{0:yyyy-MM-ddTHH:mm:ssZ}/{1:yyyy-MM-ddTHH:mm:ssZ}" -f $Start.AddDays(35).AddHours(12 * $_), $Start.AddDays(35).AddHours(12 * $_ + 12) })
        $last = @(Get-Windows $db)[-1]
        Invoke-SqliteQuery -Path $db -Query 'select count(*) from events' | Should -Be (Get-EmulatorCount $Start.AddDays(35) $last.End)
    }

    It 'gives up an export FullStory never finishes after -ExportTimeout, records why, and the next run loads the windows' {
        $db = Join-Path $Dir 'stuck.db'
        $from = $Start.AddDays(38)
        # Exports that take an hour; and no limit on running ones, as the given-up exports still run at the emulator.
        Invoke-Emulator $Emulator '/_emulator/settings' -Method Post -Body @{ exportSeconds = 3600; maxRunningExports = 0 } | Out-Null
        try {
            { Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -ExportTimeout 2 } | Should -Throw -ExpectedMessage '*no unit*'
            { Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -ExportTimeout '-00:01:00' } | Should -Throw -ExpectedMessage '*positive*'
            Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -PollInterval 00:00:00.2 -ExportTimeout 00:00:02
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $err = $null
            try { Sync-FullStoryEvent -Path $db -Api SegmentExport -Start $from | Out-Null } catch { $err = $_ }
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 60
            $err.FullyQualifiedErrorId | Should -BeLike 'FullStory.SyncFailed*'
            $err.CategoryInfo.Category | Should -Be 'OperationTimeout'
            $err.Exception.Message | Should -Match 'did not finish the export \(operation \S+\) within 2 s'
            $err.ErrorDetails.RecommendedAction | Should -Match '-ExportTimeout'
            $run = Get-FullStorySyncHistory -Path $db -Last 1
            $run.Outcome | Should -Be 'Failed'
            $run.Error | Should -Match 'did not finish the export'
            Get-StateCount $db | Should -Be 0
            # Receive stops the same way, with its own id.
            $receiveError = $null
            try { Receive-FullStoryEvents -Start $from -End $from.AddDays(1) | Out-Null } catch { $receiveError = $_ }
            $receiveError.FullyQualifiedErrorId | Should -BeLike 'FullStory.ExportTimedOut*'
            $receiveError.CategoryInfo.Category | Should -Be 'OperationTimeout'
            (Get-FullStorySession).Retry.ExportTimeout | Should -Be ([timespan]'00:00:02')
        }
        finally { Invoke-Emulator $Emulator '/_emulator/settings' -Method Post -Body @{ exportSeconds = 1 } | Out-Null }
        try {
            Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -PollInterval 00:00:00.2
            $s = Sync-FullStoryEvent -Path $db -Api SegmentExport -Start $from
            $s.Outcome | Should -Be 'Succeeded'
            $windows = @(Get-Windows $db)
            $windows[0].Start | Should -Be $from
            foreach ($w in $windows) { $w.Rows | Should -Be (Get-EmulatorCount $w.Start $w.End) -Because $w.Key }
            Invoke-SqliteQuery -Path $db -Query 'select count(*) from events' | Should -Be (Get-EmulatorCount $from $windows[-1].End)
        }
        finally { Invoke-Emulator $Emulator '/_emulator/settings' -Method Post -Body @{ maxRunningExports = 4 } | Out-Null }
    }

    It 'says a run that cannot write its destination is not recorded, never "run 0"' {
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri
        $err = $null
        # A file that is not a SQLite database: the destination cannot be written at all, not even its run history.
        $notADatabase = Join-Path $Dir 'not-a-database.db'
        Set-Content $notADatabase ('this is not SQLite ' * 100)
        try { Sync-FullStoryEvent -Path $notADatabase -Api SegmentExport | Out-Null } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'FullStory.SyncFailed*'
        $err.Exception.Message | Should -Match 'before it could be recorded'
        $err.Exception.Message | Should -Match 'not in the run history'
        $err.Exception.Message | Should -Not -Match 'run 0'
    }
}

Describe 'Receive-FullStoryEvent over many windows' {
    It 'writes every event of six windows in time order, each with its window as Source' {
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -PollInterval 00:00:00.2
        $end = $Start.AddDays(40)
        $events = Receive-FullStoryEvent -Start $Start -End $end -ThrottleLimit 4
        $events.Count | Should -Be (Get-EmulatorCount $Start $end)
        $expected = 0..5 | ForEach-Object {
            $s = $Start.AddDays(7 * $_); $e = if ($_ -lt 5) { $s.AddDays(7) } else { $end }
            "export:everyone:{0:yyyy-MM-ddTHH:mm:ssZ}/{1:yyyy-MM-ddTHH:mm:ssZ}" -f $s, $e
        }
        @($events.Source | Get-Unique) | Should -Be $expected # one run of events per window, oldest first
        $ticks = [long[]]@($events | ForEach-Object { $_.EventStart.Value.UtcTicks })
        for ($i = 1; $i -lt $ticks.Length; $i++) { if ($ticks[$i] -lt $ticks[$i - 1]) { throw "event $i is older than event $($i - 1)" } }
    }
}
