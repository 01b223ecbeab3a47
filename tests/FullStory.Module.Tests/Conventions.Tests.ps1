# PowerShell conventions: verbs, nouns, aliases, [OutputType], tab completion, pipeline binding, and what -Verbose and
# -Debug tell (never the key) in a real pwsh process.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    $script:Commands = @(Get-Command -Module FullStory -CommandType Cmdlet)
    function Get-Completion([string] $Line) { (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches }
}

Describe 'Names' {
    It 'exports the eight cmdlets' {
        $Commands.Count | Should -Be 8
    }
    It 'uses approved verbs only' {
        $approved = (Get-Verb).Verb
        foreach ($c in $Commands) { $approved | Should -Contain $c.Verb -Because $c.Name }
    }
    It 'uses singular nouns with the FullStory prefix' {
        foreach ($c in $Commands) {
            $c.Noun | Should -Match '^FullStory'
            $c.Noun | Should -Not -Match 's$' -Because "$($c.Name) should be singular (History is not a plural)"
        }
    }
    It 'exports the design card''s plural names as aliases of the singular cmdlets' {
        foreach ($pair in @(('Receive-FullStoryEvents', 'Receive-FullStoryEvent'), ('Export-FullStoryEvents', 'Export-FullStoryEvent'), ('Sync-FullStoryEvents', 'Sync-FullStoryEvent'))) {
            $alias = Get-Command $pair[0] -ErrorAction Stop
            $alias.CommandType | Should -Be 'Alias'
            $alias.ResolvedCommand.Name | Should -Be $pair[1]
            $alias.Source | Should -Be 'FullStory'
        }
    }
    It 'declares [OutputType] on every cmdlet, with the engine type it writes' {
        $expected = @{
            'Connect-FullStory' = 'FullStory.Engine.Api.FullStorySession'; 'Get-FullStorySession' = 'FullStory.Engine.Api.FullStorySession'
            'Disconnect-FullStory' = 'System.Void'; 'Get-FullStoryBundle' = 'FullStory.Engine.Api.FullStoryBundle'
            'Receive-FullStoryEvent' = 'FullStory.Engine.Events.FullStoryEvent'; 'Export-FullStoryEvent' = 'FullStory.Engine.Loading.LoadReport'
            'Sync-FullStoryEvent' = 'FullStory.Engine.Sync.SyncSummary'; 'Get-FullStorySyncHistory' = 'FullStory.Engine.Loading.SyncRunRecord'
        }
        foreach ($c in $Commands) { $c.OutputType.Name | Should -Be $expected[$c.Name] -Because $c.Name }
    }
    It 'supports -WhatIf/-Confirm where it changes a database it was not asked to run against' {
        (Get-Command Export-FullStoryEvent).Parameters.ContainsKey('WhatIf') | Should -BeTrue
    }
}

Describe 'Tab completion' {
    BeforeAll {
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "fs-complete-$([guid]::NewGuid())"
        New-Item -ItemType Directory $Dir | Out-Null
        $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'
        $db = Join-Path $Dir 'tabs.db'
        Receive-FullStoryEvent -LiteralPath $sample | Export-FullStoryEvent -Path $db -Table 'clicks' | Out-Null
        Receive-FullStoryEvent -LiteralPath $sample | Export-FullStoryEvent -Path $db -Table 'page views' | Out-Null
    }
    AfterAll { Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue }

    It 'completes -Region and -Api from their enums' {
        (Get-Completion 'Connect-FullStory -Region ').CompletionText | Should -Be @('Eu1', 'Na1')
        (Get-Completion 'Connect-FullStory -Region e').CompletionText | Should -Be @('Eu1')
        (Get-Completion 'Sync-FullStoryEvent -Api ').CompletionText | Should -Be @('Bundles', 'SegmentExport')
        (Get-Completion 'Sync-FullStoryEvents -Api s').CompletionText | Should -Be @('SegmentExport')
    }
    It 'completes -Table with the tables of the SQLite database given by -Path (not the sync tables), quoted when needed' {
        $db = Join-Path $Dir 'tabs.db'
        foreach ($cmd in 'Export-FullStoryEvent', 'Sync-FullStoryEvent', 'Get-FullStorySyncHistory') {
            (Get-Completion "$cmd -Path '$db' -Table ").CompletionText | Should -Be @('clicks', "'page views'") -Because $cmd
        }
        (Get-Completion "Sync-FullStoryEvent -Path '$db' -Table p").CompletionText | Should -Be @("'page views'")
    }
    It 'resolves -Path against the current location and falls back to events' {
        Push-Location $Dir
        try {
            (Get-Completion 'Export-FullStoryEvent -Path tabs.db -Table c').CompletionText | Should -Be @('clicks')
            (Get-Completion 'Export-FullStoryEvent -Path missing.db -Table ').CompletionText | Should -Be @('events')
            (Get-Completion 'Export-FullStoryEvent -ConnectionString x -Table ').CompletionText | Should -Be @('events')
            Test-Path (Join-Path $Dir 'missing.db') | Should -BeFalse -Because 'completion never creates a database'
        }
        finally { Pop-Location }
    }
    It 'suggests everyone for -SegmentId' {
        (Get-Completion 'Receive-FullStoryEvent -Start 2026-01-01 -End 2026-01-02 -SegmentId ').CompletionText | Should -Be @('everyone')
        (Get-Completion 'Sync-FullStoryEvent -Api SegmentExport -SegmentId ev').CompletionText | Should -Be @('everyone')
    }
}

Describe 'Pipeline binding' {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '30')
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05'
        $script:WarningPreference = 'SilentlyContinue'
        # The parameters PowerShell bound pipeline input to, from its ParameterBinding trace.
        function Get-PipelineBinding([scriptblock] $Pipeline) {
            $file = Join-Path ([IO.Path]::GetTempPath()) "fs-trace-$([guid]::NewGuid()).txt"
            try {
                Trace-Command -Name ParameterBinding -Expression $Pipeline -FilePath $file | Out-Null
                @(Select-String -LiteralPath $file -Pattern 'BIND arg .* to param \[(\w+)\] SUCCESSFUL' | ForEach-Object { $_.Matches[0].Groups[1].Value } | Select-Object -Unique)
            }
            finally { Remove-Item -LiteralPath $file -ErrorAction SilentlyContinue }
        }
    }
    AfterAll { Stop-TestEmulator $Emulator; Disconnect-FullStory }

    It 'binds FullStoryBundle objects to -Bundle by value (not to -Id by property name)' {
        $bundles = Get-FullStoryBundle -Start '2000-01-01'
        $events = $bundles | Receive-FullStoryEvent
        $events.Count | Should -Be 90
        $bound = Get-PipelineBinding { $bundles | Receive-FullStoryEvent }
        $bound | Should -Contain 'Bundle'
        $bound | Should -Not -Contain 'Id'
    }
    It 'binds objects with an Id property to -Id' {
        $rows = Get-FullStoryBundle -Start '2000-01-01' | Select-Object Id, Start
        $bound = Get-PipelineBinding { $rows | Receive-FullStoryEvent }
        $bound | Should -Contain 'Id'
        $bound | Should -Not -Contain 'Bundle'
        ($rows | Receive-FullStoryEvent).Count | Should -Be 90
        ([pscustomobject]@{ Id = [string]$rows[0].Id } | Receive-FullStoryEvent).Count | Should -Be 30 -Because 'a string id converts'
    }
    It 'binds files to -LiteralPath by PSPath (a name with brackets is not a wildcard)' {
        $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'
        $item = Get-Item $sample
        ($item | Receive-FullStoryEvent).Count | Should -Be 144
        $bound = Get-PipelineBinding { $item | Receive-FullStoryEvent }
        $bound | Should -Contain 'LiteralPath'
        $bound | Should -Not -Contain 'Path'
    }
    It 'binds events to Export-FullStoryEvent -InputObject and bundles to -Bundle' {
        $dir = Join-Path ([IO.Path]::GetTempPath()) "fs-bind-$([guid]::NewGuid())"
        New-Item -ItemType Directory $dir | Out-Null
        try {
            $bundles = Get-FullStoryBundle -Start '2000-01-01'
            $bound = Get-PipelineBinding { $bundles | Export-FullStoryEvent -Path (Join-Path $dir 'a.db') }
            $bound | Should -Contain 'Bundle'
            $bound | Should -Not -Contain 'InputObject'
            $bound = Get-PipelineBinding { $bundles | Receive-FullStoryEvent | Export-FullStoryEvent -Path (Join-Path $dir 'b.db') }
            $bound | Should -Contain 'InputObject'
            @(Get-ChildItem $dir -Filter '*.db').Count | Should -Be 2
        }
        finally { Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue }
    }
}

Describe 'Verbose and debug streams in a real pwsh process' {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '25', '--pending-polls', '1')
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "fs-streams-$([guid]::NewGuid())"
        New-Item -ItemType Directory $Dir | Out-Null
    }
    AfterAll { Stop-TestEmulator $Emulator; Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue }

    It 'tells the story of a sync and a receive, with warnings, and never the key' {
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; Kind = 'Status'; Status = 503; Times = 1 }) | Out-Null
        $script = @"
`$ErrorActionPreference = 'Stop'
# Debug lines without a prompt for each: -Debug on a compiled cmdlet asks before every one (Inquire).
`$DebugPreference = 'Continue'
Import-Module '$ModulePath'
Connect-FullStory -BaseUri '$($Emulator.BaseUri)' -RetryDelay '00:00:00.05' -PollInterval '00:00:00.05' -Verbose
Set-Location '$Dir'
`$s = Sync-FullStoryEvent -Path fullstory.db -Verbose
"RESULT sync `$(`$s.Outcome) `$(`$s.Batches) `$(`$s.Rows)"
`$day = (Get-Date).ToUniversalTime().Date.AddDays(-2)
`$n = (Receive-FullStoryEvent -Start `$day -End `$day.AddDays(1) -Verbose | Measure-Object).Count
"RESULT receive `$n"
"@
        $r = Invoke-FreshPwsh -Script ($script + "`n") -Environment @{ FULLSTORY_API_KEY = $Emulator.ApiKey }
        $all = $r.Output + $r.Errors
        $r.ExitCode | Should -Be 0 -Because $all
        $r.Output | Should -Match 'RESULT sync Succeeded 2 50'
        $r.Output | Should -Match 'RESULT receive \d+'
        # Never the key, in any stream.
        $all | Should -Not -Match ([regex]::Escape($Emulator.ApiKey))
        $secret = $Emulator.ApiKey.Substring([Math]::Max(0, $Emulator.ApiKey.Length - 12))
        $all | Should -Not -Match ([regex]::Escape($secret))
        # Debug: the commands, parameter sets and session, the key masked.
        $all | Should -Match 'DEBUG: Connect-FullStory \[ApiKey\] -BaseUri'
        $all | Should -Match 'DEBUG: Key source: \$env:FULLSTORY_API_KEY'
        $all | Should -Match 'DEBUG: Sync-FullStoryEvent \[Sqlite\] -Path ''fullstory.db'''
        $all | Should -Match 'DEBUG: Using the default session: FullStory .* with key .*\*\*\*\*'
        $all | Should -Match 'DEBUG: Receive-FullStoryEvent \[SegmentExport\] -Start \d{4}-\d\d-\d\dT00:00:00\.0000000Z? \(Utc\)'
        # Verbose: what happened.
        $all | Should -Match 'VERBOSE: Connected: FullStory'
        $all | Should -Match 'VERBOSE: GET http://127\.0\.0\.1:\d+/api/v1/export/list\?start='
        $all | Should -Match 'VERBOSE: GET http://127\.0\.0\.1:\d+/api/v1/export/get\?id='
        $all | Should -Match 'VERBOSE: .*503'
        $all | Should -Match 'VERBOSE: POST http://127\.0\.0\.1:\d+/segments/v1/exports'
        $all | Should -Match 'VERBOSE: .*signed download location, no API key'
        # Warning: the legacy API, once.
        ([regex]::Matches($all, 'WARNING: FullStory has deprecated the legacy bundle export API')).Count | Should -Be 1
    }
    It 'masks a connection string''s password in the debug stream' {
        $script = @"
Import-Module '$ModulePath'
`$DebugPreference = 'Continue'
Export-FullStoryEvent -InputObject @() -ConnectionString 'Server=127.0.0.1,1;Database=x;User Id=sa;Password=Hunter2Secret;Connect Timeout=1' -ErrorAction SilentlyContinue 5>&1 | Out-String
"@
        $r = Invoke-FreshPwsh -Script ($script + "`n")
        ($r.Output + $r.Errors) | Should -Match 'Password=\*\*\*\*'
        ($r.Output + $r.Errors) | Should -Not -Match 'Hunter2Secret'
    }
}
