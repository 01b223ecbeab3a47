# The default views: Out-String of each output type shows the few columns a person wants.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '40')
    Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05'
    $script:WarningPreference = 'SilentlyContinue'
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "fs-format-$([guid]::NewGuid())"
    New-Item -ItemType Directory $Dir | Out-Null
    $script:Db = Join-Path $Dir 'fullstory.db'
    # First line of a table: its header.
    function Get-Header($Text) { ($Text -split "`r?`n" | Where-Object { $_.Trim() })[0].Trim() -split '\s+' }
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
    It 'LoadReport: batch, table, rows, MB, seconds, already loaded' {
        $reports = Get-FullStoryBundle -Start '2000-01-01' | Export-FullStoryEvent -Path $Db
        $reports[0].GetType().FullName | Should -Be 'FullStory.Engine.Loading.LoadReport'
        $text = $reports | Out-String -Width 200
        Get-Header $text | Should -Be @('BatchKey', 'Table', 'Rows', 'MB', 'Seconds', 'AlreadyLoaded')
        $text | Should -Match 'bundle:\d+\s+events\s+40\s+\d+\.\d\s+\d+\.\d\s+False'
        $text | Should -Not -Match 'Destination|ColumnsAdded'
    }
    It 'SyncSummary: run, outcome, batches, rows, duration, data through, up to date, error' {
        $summary = Sync-FullStoryEvent -Path (Join-Path $Dir 'sync.db')
        $summary.GetType().FullName | Should -Be 'FullStory.Engine.Sync.SyncSummary'
        $text = $summary | Out-String -Width 200
        Get-Header $text | Should -Be @('RunId', 'Outcome', 'Batches', 'Rows', 'Duration', 'DataThrough', 'UpToDate', 'Error')
        $text | Should -Match '\s1\s+Succeeded\s+3\s+120\s+\d+\.\d s\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+True'
    }
    It 'SyncRunRecord: run, started, outcome, api, table, batches, rows, retries, data through' {
        Sync-FullStoryEvent -Path (Join-Path $Dir 'sync.db') | Out-Null
        $runs = Get-FullStorySyncHistory -Path (Join-Path $Dir 'sync.db')
        $runs[0].GetType().FullName | Should -Be 'FullStory.Engine.Loading.SyncRunRecord'
        $text = $runs | Out-String -Width 200
        Get-Header $text | Should -Be @('RunId', 'StartedAt', 'Outcome', 'Api', 'Table', 'Batches', 'Rows', 'Retries', 'DataThrough')
        ($text -split "`r?`n" | Where-Object { $_ -match '^\s*\d+\s' }).Count | Should -Be 2
        $text | Should -Match '\s2\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+Succeeded\s+Bundles\s+events\s+0\s+0\s+0'
        $text | Should -Not -Match 'Host|Error'
    }
    It 'Format-List * still shows every property' {
        $text = Get-FullStorySyncHistory -Path (Join-Path $Dir 'sync.db') -Last 1 | Format-List * | Out-String
        foreach ($p in 'RunId', 'EndedAt', 'Bytes', 'Error', 'Host') { $text | Should -Match "\b$p\s+:" }
    }
}
