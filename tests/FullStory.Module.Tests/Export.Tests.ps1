# Export-FullStoryEvent in a real pwsh process, into real SQLite files (SQL Server is not available here).
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Samples = Join-Path (Get-RepoRoot) 'tests/data/samples'
    $script:Legacy = Join-Path $Samples 'bundle-legacy-fields.json'
    $script:Segment = Join-Path $Samples 'segment-export-fields.json'
}

Describe 'Export-FullStoryEvent' {
    BeforeEach {
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ('fs-export-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
        New-Item -ItemType Directory -Path $Dir | Out-Null
        Push-Location $Dir
    }
    AfterEach {
        Pop-Location
        Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
    }

    It 'loads one batch per source into fullstory.db in the current location by default' {
        $reports = Receive-FullStoryEvent -Path $Legacy, $Segment | Export-FullStoryEvent
        $reports.Count | Should -Be 2
        ($reports | Measure-Object Rows -Sum).Sum | Should -Be 288
        $reports[0].Table | Should -Be 'events'
        $reports[0].Destination | Should -Be ('sqlite:' + (Join-Path $Dir 'fullstory.db'))
        Join-Path $Dir 'fullstory.db' | Should -Exist
    }

    It 'skips sources already loaded, and says so in its reports' {
        Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvents | Out-Null
        $again = Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvent
        $again.AlreadyLoaded | Should -Be $true
        $again.Rows | Should -Be 0
        $again.SkippedEvents | Should -Be 144
        Invoke-SqliteQuery -Path (Join-Path $Dir 'fullstory.db') -Query 'select count(*) from events' | Should -Be 144
    }

    It 'creates nothing under -WhatIf' {
        Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvent -WhatIf -WarningAction SilentlyContinue | Should -BeNullOrEmpty
        Join-Path $Dir 'fullstory.db' | Should -Not -Exist
    }

    It 'rolls back a batch when the pipeline stops early, so a rerun loads it whole' {
        # Stop after the worker has begun the batch (table created, first custom var columns added) inside its transaction.
        $seen = Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvent -CustomVarColumns -Verbose 4>&1 | Select-Object -First 8 | ForEach-Object { "$_" }
        $seen -join "`n" | Should -Match 'Created table events'
        $report = Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvent -CustomVarColumns
        $report.Rows | Should -Be 144
        $report.AlreadyLoaded | Should -BeFalse
        $report.ColumnsAdded.Count | Should -Be 22 # the first attempt's ALTER TABLEs were rolled back with it
    }

    It 'refuses an empty table name with a stable error id' {
        { Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvent -Table ' ' -ErrorAction Stop } |
            Should -Throw -ErrorId 'FullStory.InvalidTable,FullStory.PowerShell.Commands.ExportFullStoryEventCommand'
    }

    It 'never shows a connection string password' {
        $err = $null
        Receive-FullStoryEvent -Path $Legacy | Export-FullStoryEvent -ConnectionString 'Server=nohost.invalid;Database=x;User Id=sa;Password=S3cr3tPw!;Connect Timeout=1' -ErrorVariable err -ErrorAction SilentlyContinue
        $err | Should -Not -BeNullOrEmpty
        ($err | Out-String) | Should -Not -Match 'S3cr3tPw'
        $err[0].FullyQualifiedErrorId | Should -Match '^FullStory\.ExportFailed'
    }
}

Describe 'Export-FullStoryEvent with bundles from the pipeline (the fast path)' {
    BeforeAll {
        $script:FastEmulator = Start-TestEmulator -Arguments @('--bundles', '4', '--events-per-bundle', '300')
        Connect-FullStory -ApiKey $FastEmulator.ApiKey -BaseUri $FastEmulator.BaseUri -RetryDelay '00:00:00.05' -WarningAction SilentlyContinue
        $script:FastDb = Join-Path ([IO.Path]::GetTempPath()) "fast-$([guid]::NewGuid()).db"
    }
    AfterAll { Stop-TestEmulator $FastEmulator; Disconnect-FullStory; Remove-Item "$FastDb*" -ErrorAction SilentlyContinue }

    It 'downloads, parses and loads each bundle once, and skips loaded ones without downloading them' {
        Invoke-Emulator $FastEmulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; Kind = 'Truncate'; AfterBytes = 4000; Times = 1 }) | Out-Null
        $reports = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Export-FullStoryEvents -Path $FastDb
        $reports.Count | Should -Be 4
        ($reports | Measure-Object Rows -Sum).Sum | Should -Be 1200
        $reports[0].Bytes | Should -BeGreaterThan 0
        $gets = (Invoke-Emulator $FastEmulator '/_emulator/stats').endpointCounts.get
        $gets | Should -Be 5 # four bundles, one of them twice after the cut-off body

        $again = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Export-FullStoryEvents -Path $FastDb -WarningAction SilentlyContinue
        $again.Count | Should -Be 4
        $again.AlreadyLoaded | Should -Not -Contain $false
        (Invoke-Emulator $FastEmulator '/_emulator/stats').endpointCounts.get | Should -Be $gets
        (Receive-FullStoryEvent -Path (Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json') | Export-FullStoryEvent -Path $FastDb).Rows | Should -Be 144
    }
    It 'lands the same rows as the pipeline path' {
        $viaEvents = Join-Path ([IO.Path]::GetTempPath()) "events-$([guid]::NewGuid()).db"
        try {
            Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvent | Export-FullStoryEvent -Path $viaEvents | Out-Null
            $q = "select count(*) || '|' || sum(UserId % 1000003) || '|' || group_concat(EventStart || coalesce(CustomVars, '') || _fs_batch, ';') from (select * from events where _fs_batch like 'bundle:%' order by _fs_batch, EventStart, UserId, PageId, CustomVars)"
            $fast = Invoke-SqliteQuery -Path $FastDb -Query $q
            $slow = Invoke-SqliteQuery -Path $viaEvents -Query $q
            $fast | Should -BeLike '1200|*'
            $slow | Should -Be $fast
        }
        finally { Remove-Item "$viaEvents*" -ErrorAction SilentlyContinue }
    }
    It 'needs a session for bundles' {
        Disconnect-FullStory
        try {
            $bundle = Get-FullStoryBundle -Session (Connect-FullStory -ApiKey $FastEmulator.ApiKey -BaseUri $FastEmulator.BaseUri -PassThru) -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1
            Disconnect-FullStory
            { $bundle | Export-FullStoryEvent -Path $FastDb -ErrorAction Stop } | Should -Throw -ExpectedMessage '*Connect-FullStory*'
        }
        finally { Connect-FullStory -ApiKey $FastEmulator.ApiKey -BaseUri $FastEmulator.BaseUri -RetryDelay '00:00:00.05' }
    }
}
