# Get-FullStoryBundle and Receive-FullStoryEvent in a real pwsh process against the emulator process.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '24', '--events-per-bundle', '250', '--sample-bundle', (Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'))
    Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05' -WarningAction SilentlyContinue
    $script:Dataset = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
    $script:WarningPreference = 'SilentlyContinue'
}
AfterAll { Stop-TestEmulator $Emulator; Disconnect-FullStory }
Describe 'Bundles and events' {
BeforeEach { Invoke-Emulator $Emulator '/_emulator/reset' -Method Post | Out-Null }

Describe 'Get-FullStoryBundle' {
    It 'lists every bundle past the 20-per-call limit, oldest first, as typed objects' {
        $bundles = Get-FullStoryBundle -Start '2000-01-01'
        $bundles.Count | Should -Be 25
        $bundles.Id | Should -Be $Dataset.Id
        $bundles[0].GetType().Name | Should -Be 'FullStoryBundle'
        $bundles[0].Start.ToString() | Should -Be '2020-08-27T00:00:00.000Z'
        $bundles[1].Period | Should -Be ([timespan]::FromDays(1))
        (Invoke-Emulator $Emulator '/_emulator/stats').endpointCounts.list | Should -Be 3
    }
    It 'applies -End on the client' {
        $all = Get-FullStoryBundle -Start '2000-01-01'
        $some = Get-FullStoryBundle -Start $all[3].Start.UtcDateTime -End $all[7].Start.UtcDateTime
        $some.Id | Should -Be $all[3..6].Id
    }
    It 'shows a table by default' {
        $text = Get-FullStoryBundle -Start '2000-01-01' | Select-Object -First 2 | Out-String
        $text | Should -Match 'Id\s+Start\s+Stop'
    }
}

Describe 'Receive-FullStoryEvent' {
    It 'streams every event of every piped bundle, exactly once' {
        $events = Get-FullStoryBundle -Start '2000-01-01' | Receive-FullStoryEvents
        $events.Count | Should -Be (144 + 24 * 250)
        ($events | Group-Object Source).Count | Should -Be 25
    }
    It 'round-trips the real sample: typed fields, milliseconds, 64-bit ids and every custom var' {
        $sample = Get-Content -Raw (Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json') | ConvertFrom-Json -AsHashtable
        $events = Receive-FullStoryEvent -Id $Dataset[0].Id
        $events.Count | Should -Be 144
        for ($i = 0; $i -lt 144; $i++) {
            $e = $events[$i]; $s = $sample[$i]
            $e.UserId | Should -BeOfType [long]
            $e.UserId | Should -Be $s.UserId
            $e.EventStart.ToString() | Should -Be $s.EventStart
            $e.EventType | Should -Be $s.EventType
            $e.PageUserAgent | Should -Be $s.PageAgent
            $custom = @($s.Keys | Where-Object { $_ -like 'evt_*' -or $_ -like 'page_*' -or $_ -like 'user_*' })
            if ($custom.Count -eq 0) { $e.CustomVars | Should -BeNullOrEmpty }
            else {
                $vars = $e.CustomVars | ConvertFrom-Json -AsHashtable
                $vars.Keys.Count | Should -Be $custom.Count
                foreach ($k in $custom) { $vars[$k] | Should -Be $s[$k] }
            }
        }
    }
    It 'pipes into Export-Csv with the same columns for every event, milliseconds kept and no culture formatting' {
        $csv = Join-Path ([IO.Path]::GetTempPath()) "events-$([guid]::NewGuid()).csv"
        try {
            $saved = [cultureinfo]::CurrentCulture
            [cultureinfo]::CurrentCulture = 'de-DE'
            try { Receive-FullStoryEvent -Id $Dataset[0].Id, $Dataset[1].Id | Export-Csv $csv } finally { [cultureinfo]::CurrentCulture = $saved }
            $rows = Import-Csv $csv
            $rows.Count | Should -Be 394
            $header = (Get-Content $csv -TotalCount 1)
            $header | Should -Match '"EventStart"'
            $header | Should -Match '"CustomVars","Source"$'
            $rows[0].EventStart | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'
            $expected = (Invoke-RestMethod "$($Emulator.BaseUri)_emulator/events?bundleId=$($Dataset[1].Id)")
            $generated = $rows | Where-Object Source -eq "bundle:$($Dataset[1].Id)"
            $generated.Count | Should -Be 250
            for ($i = 0; $i -lt 250; $i++) {
                $exp = $expected[$i]
                $generated[$i].UserId | Should -Be ([string]$exp.UserId)
                $keys = @($exp.PSObject.Properties.Name | Where-Object { $_ -match '^(evt|user|page)_' })
                if ($keys) {
                    $vars = $generated[$i].CustomVars | ConvertFrom-Json -AsHashtable
                    foreach ($k in $keys) { $vars.ContainsKey($k) | Should -BeTrue -Because "custom var $k of event $i must not be lost" }
                }
                if ($null -ne $exp.EventCumulativeLayoutShift) { $generated[$i].EventCumulativeLayoutShift | Should -Not -Match ',' }
            }
        }
        finally { Remove-Item $csv -ErrorAction SilentlyContinue }
    }
    It 'streams a Segment Export window with exactly the events of that window' {
        $start = [datetime]::Parse($Dataset[3].StartTime).ToUniversalTime()
        $end = $start.AddHours(36)
        $expected = Invoke-RestMethod "$($Emulator.BaseUri)_emulator/events?start=$($start.ToString('o'))&end=$($end.ToString('o'))"
        $events = Receive-FullStoryEvent -Start $start -End $end
        $events.Count | Should -Be $expected.Count
        $events.Count | Should -BeGreaterThan 300
        $events[0].Source | Should -BeLike 'export:everyone:*'
        ($events.EventStart | Measure-Object -Minimum).Minimum.Value | Should -BeGreaterOrEqual ([datetimeoffset]$start)
    }
    It 'recovers from injected faults with no event lost or repeated' {
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(
            @{ Endpoint = 'get'; Kind = 'Truncate'; AfterBytes = 3000; Times = 1 },
            @{ Endpoint = 'get'; Kind = 'Status'; Status = 503; Times = 2 },
            @{ Endpoint = 'get'; Kind = 'TooManyRequests'; RetryAfterSeconds = 1; Times = 1 },
            @{ Endpoint = 'get'; Kind = 'MalformedJson'; AfterEvents = 100; Times = 1 }) | Out-Null
        $events = Receive-FullStoryEvent -Id $Dataset[5].Id, $Dataset[6].Id -Verbose 4>&1
        $verbose = $events | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $real = $events | Where-Object { $_ -isnot [System.Management.Automation.VerboseRecord] }
        $real.Count | Should -Be 500
        ($real | Select-Object -Property Source, EventStart, UserId, PageId -Unique).Count | Should -Be 500
        ($verbose.Message -match 'retry|again').Count | Should -BeGreaterOrEqual 5
        (Invoke-Emulator $Emulator '/_emulator/stats').faultsFired | Should -Be 5
    }
    It 'keeps raw downloads with -OutDirectory and replays them with -Path' {
        $dir = Join-Path ([IO.Path]::GetTempPath()) "archive-$([guid]::NewGuid())"
        try {
            $live = Receive-FullStoryEvent -Id $Dataset[2].Id -OutDirectory $dir
            $files = Get-ChildItem $dir
            $files.Name | Should -Be "bundle-$($Dataset[2].Id).json.gz"
            $replayed = Receive-FullStoryEvent -Path (Join-Path $dir '*.gz')
            $replayed.Count | Should -Be $live.Count
            ($replayed | ForEach-Object { $_.EventStart.ToString() + $_.CustomVars }) | Should -Be ($live | ForEach-Object { $_.EventStart.ToString() + $_.CustomVars })
            $files | Receive-FullStoryEvent | Measure-Object | Select-Object -ExpandProperty Count | Should -Be 250
        }
        finally { Remove-Item $dir -Recurse -ErrorAction SilentlyContinue }
    }
    It 'reads .json and .ndjson files without a session' {
        Disconnect-FullStory
        try {
            $dir = Join-Path ([IO.Path]::GetTempPath()) "files-$([guid]::NewGuid())"
            New-Item -ItemType Directory $dir | Out-Null
            $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/segment-export-fields.json'
            (Get-Content -Raw $sample | ConvertFrom-Json) | ForEach-Object { $_ | ConvertTo-Json -Compress -Depth 5 } | Set-Content (Join-Path $dir 'export.ndjson')
            (Receive-FullStoryEvent -Path (Join-Path $dir 'export.ndjson')).Count | Should -Be 144
            (Receive-FullStoryEvent -LiteralPath $sample | Where-Object CustomVars -like '*page_foobar_str*').Count | Should -Be 33
        }
        finally {
            Remove-Item $dir -Recurse -ErrorAction SilentlyContinue
            Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05'
        }
    }
}

Describe 'Receive-FullStoryEvent errors say what to fix' {
    It 'names an unknown bundle' {
        { Receive-FullStoryEvent -Id 42 -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.NotFound,FullStory.PowerShell.Commands.ReceiveFullStoryEventCommand' -ExpectedMessage '*no bundle 42*'
    }
    It 'names the file and position of malformed JSON' {
        $bad = Join-Path ([IO.Path]::GetTempPath()) "bad-$([guid]::NewGuid()).json"
        '[{"UserId":1},{"UserId":2}}]' | Set-Content $bad
        try {
            $err = $null
            $events = Receive-FullStoryEvent -Path $bad -ErrorVariable err -ErrorAction SilentlyContinue
            $events.Count | Should -Be 2
            $err[0].FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidEventData*'
            $err[0].Exception.Message | Should -BeLike "*$bad*byte*"
        }
        finally { Remove-Item $bad }
    }
    It 'reports a FAILED export with FullStory''s details' {
        # A window that fails is split in halves and tried again: this one fails however small it gets.
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'operation'; Kind = 'Failed'; ErrorDetails = 'too much data'; Times = 0 }) | Out-Null
        try {
            { Receive-FullStoryEvent -Start '2026-01-01' -End '2026-01-02' -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.ExportFailed*' -ExpectedMessage '*too much data*not split below 01:00:00*'
        }
        finally { Invoke-Emulator $Emulator '/_emulator/faults' -Method Delete | Out-Null }
    }
    It 'says when the key is refused' {
        $s = Connect-FullStory -ApiKey 'na1.notTheRightKey000000000000000000' -BaseUri $Emulator.BaseUri -MaxAttempts 1 -PassThru
        { Get-FullStoryBundle -Session $s -ErrorAction Stop } | Should -Throw -ExpectedMessage '*Data Export add-on*'
        { Receive-FullStoryEvent -Session $s -Id $Dataset[1].Id -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.AuthenticationFailed*'
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05'
    }
}

Describe 'Stopping' {
    It 'stops a slow download promptly when the pipeline is stopped (Ctrl+C)' {
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; Kind = 'Slow'; BytesPerSecond = 2000; Times = 1 }) | Out-Null
        $ps = [powershell]::Create()
        try {
            $ps.AddScript("Import-Module '$ModulePath'; Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)'; Receive-FullStoryEvent -Id $($Dataset[4].Id) -WarningAction SilentlyContinue") | Out-Null
            $async = $ps.BeginInvoke()
            Start-Sleep -Milliseconds 1500
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 5
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $ps.Dispose() }
    }
}
}
