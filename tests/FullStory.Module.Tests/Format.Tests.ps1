# The default views: Out-String of each output type shows the few columns a person wants.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    # Bundles that ended long ago: the summary's lag is days, to read as "Nd Nh Nm".
    $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '40', '--first-bundle-start', '2026-01-01')
    Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05'
    $script:WarningPreference = 'SilentlyContinue'
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "fs-format-$([guid]::NewGuid())"
    New-Item -ItemType Directory $Dir | Out-Null
    $script:Db = Join-Path $Dir 'fullstory.db'
    # First line of a table: its header.
    function Get-Header($Text) { ($Text -split "`r?`n" | Where-Object { $_.Trim() })[0].Trim() -split '\s+' }
    # Format-List text as name => value.
    function Get-ListValues($Text) {
        $values = [ordered]@{}
        foreach ($line in $Text -split "`r?`n") { if ($line -match '^(\w+)\s*: ?(.*)$') { $values[$Matches[1]] = $Matches[2].TrimEnd() } }
        $values
    }
    $script:Iso = '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'
}
AfterAll {
    Stop-TestEmulator $Emulator
    Disconnect-FullStory
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Format views' {
    It 'FullStorySession: region, base URI, masked key, connected at; never the key' {
        $text = Get-FullStorySession | Out-String -Width 200
        Get-Header $text | Should -Be @('Region', 'ApiBaseUri', 'ApiKey', 'ConnectedAt')
        $text | Should -Match '\*\*\*\*'
        $text | Should -Not -Match ([regex]::Escape($Emulator.ApiKey))
        $text | Should -Match '\s\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s*$'
    }
    It 'FullStoryBundle: Id, Start, Stop, Hours' {
        $text = Get-FullStoryBundle -Start '2000-01-01' | Out-String -Width 200
        Get-Header $text | Should -Be @('Id', 'Start', 'Stop', 'Hours')
        $text | Should -Match '\s24\s*$|\s24\r?\n'
    }
    It 'FullStoryEvent: time, type, user, session, page and target' {
        $text = Get-FullStoryBundle -Start '2000-01-01' | Select-Object -First 1 | Receive-FullStoryEvent | Select-Object -First 3 | Out-String -Width 250
        Get-Header $text | Should -Be @('EventStart', 'EventType', 'UserId', 'SessionId', 'PageUrl', 'EventTargetText')
        $text | Should -Match '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'
    }
    It 'FullStoryEvent: Format-List shows every property, ending with CustomVars, Source and SourceIndex' {
        $events = Get-FullStoryBundle -Start '2000-01-01' | Select-Object -First 1 | Receive-FullStoryEvent
        $names = @(($events[1] | Format-List | Out-String -Width 250) -split "`r?`n" | Where-Object { $_ -match '^(\w+)\s+:' } | ForEach-Object { $Matches[1] })
        $names.Count | Should -Be 70
        $names[-3..-1] | Should -Be @('CustomVars', 'Source', 'SourceIndex')
        ($events[1] | Format-List SourceIndex | Out-String) | Should -Match 'SourceIndex : 1\b'
    }
    It 'LoadReport: batch, table, rows, MB, seconds, already loaded, complete' {
        $reports = Get-FullStoryBundle -Start '2000-01-01' | Export-FullStoryEvent -Path $Db
        $reports[0].GetType().FullName | Should -Be 'FullStory.Engine.Loading.LoadReport'
        $text = $reports | Out-String -Width 200
        Get-Header $text | Should -Be @('BatchKey', 'Table', 'Rows', 'MB', 'Seconds', 'AlreadyLoaded', 'Complete')
        $text | Should -Match 'bundle:\d+\s+events\s+40\s+\d+\.\d\d\s+\d+\.\d\s+False\s+True'
        $text | Should -Not -Match 'Destination|ColumnsAdded'
    }
    It 'LoadReport: a later, wider value is not cut (every column has a width, so pwsh does not size the table to the first rows)' {
        $type = ([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'FullStory.Engine' }).GetType('FullStory.Engine.Loading.LoadReport', $true)
        $new = { param($key, $rows) [Activator]::CreateInstance($type, @($key, 'sqlite:/x.db', 'events', [long]$rows, [long]0, [timespan]::FromSeconds(1), $false, [string[]]@(), [datetimeoffset]::UtcNow, $false, [long]0, [long]0)) }
        $text = @((& $new 'bundle:1' 5), (& $new 'export:everyone:2026-11-20T00:00:00Z/2026-11-27T00:00:00Z' 1234567)) | Out-String -Width 200
        $text | Should -Match 'export:everyone:2026-11-20T00:00:00Z/2026-11-27T00:00:00Z\s+events\s+1234567\s'
        $text | Should -Not -Match '…'
    }
    It 'LoadReport of piped events: MB is blank (the bytes are unknown there), not 0.0' {
        $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'
        $report = Receive-FullStoryEvent -Path $sample | Export-FullStoryEvent -Path (Join-Path $Dir 'piped.db')
        $report.Bytes | Should -Be 0
        $line = ($report | Out-String -Width 250) -split "`r?`n" | Where-Object { $_ -match '^file:' }
        $line | Should -Match 'events\s+144\s+\d+\.\d\s+False\s+True\s*$'
        $line | Should -Not -Match '0\.0\d?\s+\d+\.\d\s+False'
    }
    It 'SyncSummary: run, outcome, batches, rows, duration, data through, up to date, message (not "Error" on success)' {
        $summary = Sync-FullStoryEvent -Path (Join-Path $Dir 'sync.db') -Start '2025-12-01'
        $summary.GetType().FullName | Should -Be 'FullStory.Engine.Sync.SyncSummary'
        $text = $summary | Out-String -Width 200
        Get-Header $text | Should -Be @('RunId', 'Outcome', 'Batches', 'Rows', 'Duration', 'DataThrough', 'UpToDate', 'Message')
        $text | Should -Match '\s1\s+Succeeded\s+3\s+120\s+\d+\.\d s\s+2026-01-04T00:00:00\.000Z\s+False\s+Loaded'
        $text | Should -Not -Match 'Error'
    }
    It 'SyncRunRecord: run, started, outcome, api, table, batches, rows, retries, data through' {
        Sync-FullStoryEvent -Path (Join-Path $Dir 'sync.db') | Out-Null
        $runs = Get-FullStorySyncHistory -Path (Join-Path $Dir 'sync.db')
        $script:Runs = $runs
        $runs[0].GetType().FullName | Should -Be 'FullStory.Engine.Loading.SyncRunRecord'
        $text = $runs | Out-String -Width 200
        Get-Header $text | Should -Be @('RunId', 'StartedAt', 'Outcome', 'Api', 'Table', 'Batches', 'Rows', 'Retries', 'DataThrough')
        ($text -split "`r?`n" | Where-Object { $_ -match '^\s*\d+\s' }).Count | Should -Be 2
        $text | Should -Match '\s2\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+Succeeded\s+Bundles\s+events\s+0\s+0\s+0\s+2026-01-04T00:00:00\.000Z'
        $text | Should -Not -Match 'Host|Error'
    }
    It 'list views show timestamps as the events do and the lag as a duration, the same under <_>' -ForEach 'en-US', 'de-DE' {
        $summary = Sync-FullStoryEvent -Path (Join-Path $Dir 'sync.db')
        $saved = [cultureinfo]::CurrentCulture
        [cultureinfo]::CurrentCulture = $_
        try {
            $s = Get-ListValues ($summary | Format-List | Out-String -Width 200)
            $run = Get-ListValues ($Runs[0] | Format-List | Out-String -Width 200)
            $session = Get-ListValues (Get-FullStorySession | Format-List | Out-String -Width 200)
            $table = $summary | Out-String -Width 200
        }
        finally { [cultureinfo]::CurrentCulture = $saved }
        foreach ($p in 'StartedAt', 'EndedAt') { $s[$p] | Should -Match $Iso -Because "SyncSummary.$p" }
        $s.DataThrough | Should -Be '2026-01-04T00:00:00.000Z'
        $s.Duration | Should -Match '^\d+\.\d s$'
        # Now minus 2026-01-04: whole days, then hours and minutes, e.g. "331d 5h 8m" (not 331.05:08:47.1234567).
        $s.Lag | Should -Match '^\d+d \d{1,2}h \d{1,2}m$'
        $s.Lag | Should -Be ('{0}d {1}h {2}m' -f $summary.Lag.Days, $summary.Lag.Hours, $summary.Lag.Minutes)
        $summary.Lag.Days | Should -BeGreaterThan 0
        foreach ($p in 'StartedAt', 'EndedAt') { $run[$p] | Should -Match $Iso -Because "SyncRunRecord.$p" }
        $run.DataThrough | Should -Be '2026-01-04T00:00:00.000Z'
        $session.ConnectedAt | Should -Match $Iso
        $table | Should -Match '2026-01-04T00:00:00\.000Z'
        # The properties stay typed for scripts.
        $summary.DataThrough | Should -BeOfType [datetimeoffset]
        $summary.Lag | Should -BeOfType [timespan]
    }
    It 'Format-List * still shows every property' {
        $text = Get-FullStorySyncHistory -Path (Join-Path $Dir 'sync.db') -Last 1 | Format-List * | Out-String
        foreach ($p in 'RunId', 'EndedAt', 'Bytes', 'Error', 'Host') { $text | Should -Match "\b$p\s+:" }
    }
}
