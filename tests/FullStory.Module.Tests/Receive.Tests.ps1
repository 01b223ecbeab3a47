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
            $header | Should -Match '"CustomVars","Source","SourceIndex"$'
            $rows[0].SourceIndex | Should -Be '0'
            $rows[1].SourceIndex | Should -Be '1'
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
        '[{"EventStart":"2020-08-27T06:20:26.900Z","EventType":"click","UserId":1},{"EventStart":"2020-08-27T06:20:27.900Z","EventType":"click","UserId":2}}]' | Set-Content $bad
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

Describe 'Receive-FullStoryEvent -Path and -LiteralPath' {
    BeforeAll {
        $script:Files = Join-Path ([IO.Path]::GetTempPath()) "fs-files-$([guid]::NewGuid())"
        New-Item -ItemType Directory (Join-Path $Files 'raw') | Out-Null
        $script:SampleJson = Join-Path (Get-RepoRoot) 'tests/data/samples/segment-export-fields.json'
        $script:SampleBytes = [IO.File]::ReadAllBytes($SampleJson)
        $script:NdjsonText = ((Get-Content -Raw $SampleJson | ConvertFrom-Json) | ForEach-Object { $_ | ConvertTo-Json -Compress -Depth 5 }) -join "`n"
        function script:New-Gzip([byte[]] $Bytes, [int] $Keep = -1) {
            # $Keep >= 0: what a killed copy leaves, the compressor flushed to a deflate block boundary and the bytes
            # copied before Dispose writes the final block and the CRC-32/length trailer.
            $ms = [IO.MemoryStream]::new()
            $gz = [IO.Compression.GZipStream]::new($ms, [IO.Compression.CompressionLevel]::Optimal, $true)
            if ($Keep -ge 0) { $gz.Write($Bytes, 0, $Keep); $gz.Flush(); $cut = $ms.ToArray(); $gz.Dispose(); return , $cut }
            $gz.Write($Bytes, 0, $Bytes.Length); $gz.Dispose(); , $ms.ToArray()
        }
        [IO.File]::WriteAllBytes((Join-Path $Files 'raw/a.json.gz'), (New-Gzip $SampleBytes))
        [IO.File]::WriteAllBytes((Join-Path $Files 'raw/b.json.gz'), (New-Gzip $SampleBytes))
        [IO.File]::WriteAllBytes((Join-Path $Files 'br[1].json.gz'), (New-Gzip $SampleBytes))
    }
    AfterAll { Remove-Item -LiteralPath $Files -Recurse -Force -ErrorAction SilentlyContinue }

    It 'reads files piped from Get-ChildItem without a session and without the legacy-API warning' {
        # A fresh process: the deprecation warning is shown once per process, so this one must not have shown it yet.
        $module = Get-TestModulePath
        $r = Invoke-FreshPwsh -Script @"
Import-Module '$module'
`$noSession = @(Get-ChildItem '$Files/raw/*.json.gz' | Receive-FullStoryEvents).Count
`$notConnected = try { [pscustomobject]@{ Id = 1 } | Receive-FullStoryEvents -ErrorAction Stop; 'no error' } catch { `$_.FullyQualifiedErrorId }
Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)' -WarningAction SilentlyContinue
`$fromFiles = @(Get-ChildItem '$Files/raw/*.json.gz' | Receive-FullStoryEvents -WarningVariable w1 -WarningAction SilentlyContinue)
`$fromApi = @(Receive-FullStoryEvents -Id $($Dataset[1].Id) -WarningVariable w2 -WarningAction SilentlyContinue)
[pscustomobject]@{ NoSession = `$noSession; NotConnected = `$notConnected; FromFiles = `$fromFiles.Count; FilesWarnings = @(`$w1).Count; FromApi = `$fromApi.Count; ApiWarning = "`$w2" } | ConvertTo-Json -Compress
"@
        $r.ExitCode | Should -Be 0 -Because $r.Errors
        $result = ($r.Output -split "`n" | Where-Object { $_.StartsWith('{') } | Select-Object -Last 1) | ConvertFrom-Json
        $result.NoSession | Should -Be 288
        $result.NotConnected | Should -BeLike 'FullStory.NotConnected,*' -Because 'piped bundle ids still need a session'
        $result.FromFiles | Should -Be 288
        $result.FilesWarnings | Should -Be 0
        $result.FromApi | Should -Be 250
        $result.ApiWarning | Should -BeLike '*deprecated the legacy bundle export API*' -Because 'downloads still warn, so the check above can fail'
    }
    It 'says that a directory is a directory and what to pass instead' {
        $err1 = $err2 = $err3 = $null
        $events = @(Receive-FullStoryEvent -Path (Join-Path $Files 'raw') -ErrorVariable err1 -ErrorAction SilentlyContinue) +
            @(Receive-FullStoryEvent -LiteralPath (Join-Path $Files 'raw') -ErrorVariable err2 -ErrorAction SilentlyContinue) +
            @(Get-Item (Join-Path $Files 'raw') | Receive-FullStoryEvent -ErrorVariable err3 -ErrorAction SilentlyContinue)
        $events | Should -BeNullOrEmpty
        $err3[0].Exception.Message | Should -Not -BeLike '*::*' -Because 'a piped directory is named by its path, not its PSPath'
        foreach ($err in @(, $err1) + @(, $err2) + @(, $err3)) {
            $err.Count | Should -Be 1
            $err[0].FullyQualifiedErrorId | Should -BeLike 'FullStory.PathIsDirectory,*'
            $err[0].Exception.Message | Should -BeLike "*raw' is a directory*raw*json.gz*"
            $err[0].Exception.Message | Should -Not -BeLike '*denied*'
        }
    }
    It 'reports a pattern that matches nothing, naming it' {
        $pattern = Join-Path $Files 'nope*.json.gz'
        $err = $null
        $events = Receive-FullStoryEvent -Path $pattern, (Join-Path $Files 'raw/a.json.gz') -ErrorVariable err -ErrorAction SilentlyContinue
        @($events).Count | Should -Be 144 -Because 'the other paths are still read'
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'FullStory.FileNotFound,*'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err[0].Exception.Message | Should -BeLike "*'$pattern'*"
        { Receive-FullStoryEvent -Path $pattern -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.FileNotFound*'
    }
    It 'suggests -LiteralPath for a name with brackets, which -LiteralPath and Get-ChildItem read' {
        $bracketed = Join-Path $Files 'br[1].json.gz'
        $err = $null
        Receive-FullStoryEvent -Path $bracketed -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].Exception.Message.Contains("use -LiteralPath '$bracketed'") | Should -BeTrue -Because $err[0].Exception.Message
        @(Receive-FullStoryEvent -LiteralPath $bracketed).Count | Should -Be 144
        $piped = @(Get-ChildItem -LiteralPath $bracketed | Receive-FullStoryEvent)
        $piped.Count | Should -Be 144
        $piped[0].Source | Should -Be "file:$bracketed"
    }
    It 'accepts a UTF-8 byte-order mark in <Name>' -ForEach @(@{ Name = 'bom.json' }, @{ Name = 'bom.ndjson' }, @{ Name = 'bom.json.gz' }) {
        $text = if ($Name -like '*.ndjson') { [Text.Encoding]::UTF8.GetBytes($NdjsonText) } else { $SampleBytes }
        [byte[]] $bytes = @(0xEF, 0xBB, 0xBF) + $text
        if ($Name -like '*.gz') { $bytes = New-Gzip $bytes }
        $file = Join-Path $Files $Name
        [IO.File]::WriteAllBytes($file, $bytes)
        $events = @(Receive-FullStoryEvent -LiteralPath $file -ErrorAction Stop)
        $events.Count | Should -Be 144
        $events[143].SourceIndex | Should -Be 143
    }
    It 'warns, naming the file, when a file holds no events: <Name>' -ForEach @(
        @{ Name = 'zero.json'; Text = $null }, @{ Name = 'blank.json'; Text = " `r`n " }, @{ Name = 'array.json'; Text = '[]' }, @{ Name = 'empty.json.gz'; Text = '' }) {
        $file = Join-Path $Files $Name
        $bytes = [Text.Encoding]::UTF8.GetBytes([string]$Text)
        if ($Name -like '*.gz') { $bytes = New-Gzip $bytes }
        [IO.File]::WriteAllBytes($file, $bytes)
        $warnings = $null; $err = $null
        $events = Receive-FullStoryEvent -LiteralPath $file -WarningVariable warnings -WarningAction SilentlyContinue -ErrorVariable err
        $events | Should -BeNullOrEmpty
        $err | Should -BeNullOrEmpty
        $warnings.Count | Should -Be 1
        "$($warnings[0])" | Should -BeLike "*'$file' holds no events*"
    }
    It 'refuses JSON that is not FullStory data, naming file, element and byte: <Text>' -ForEach @(
        @{ Text = '{"hello":"world","items":[1,2,3]}'; Byte = 0 }, @{ Text = '[{"foo":1},{"bar":2}]'; Byte = 1 }) {
        $file = Join-Path $Files 'foreign.json'
        [IO.File]::WriteAllText($file, $Text)
        $err = $null
        $events = Receive-FullStoryEvent -LiteralPath $file -ErrorVariable err -ErrorAction SilentlyContinue
        $events | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidEventData,*'
        $err[0].Exception.Message | Should -BeLike "*$file*at byte $Byte (element 1)*not a FullStory event*no EventStart*"
    }
    It 'stops with an error naming file and byte at a gzip file cut at a block boundary' {
        $lines = [Text.Encoding]::UTF8.GetBytes($NdjsonText + "`n")
        $keep = [Text.Encoding]::UTF8.GetByteCount((($NdjsonText -split "`n")[0..99] -join "`n") + "`n")
        $file = Join-Path $Files 'cut.ndjson.gz'
        [IO.File]::WriteAllBytes($file, (New-Gzip $lines -Keep $keep))
        $err = $null
        $events = @(Receive-FullStoryEvent -LiteralPath $file -ErrorVariable err -ErrorAction SilentlyContinue)
        $events.Count | Should -Be 100
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidEventData,*'
        $err[0].Exception.Message | Should -BeLike "*$file ended early at byte $($keep.ToString('N0'))*gzip*"
        $err[0].Exception.IsTruncated | Should -BeTrue
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
