# Sync-FullStoryEvent as a scheduled task runs it: a fresh pwsh -NonInteractive process with the key in the environment,
# the database as the bookmark, and an exit code that tells the scheduler whether the run failed. Into SQLite and into
# SQL Server (FULLSTORY_SQLSERVER_CONNECTION_STRING; skipped with the reason when there is none).
BeforeDiscovery {
    $script:Destinations = @(@{ Kind = 'SQLite' }, @{ Kind = 'SqlServer' })
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.Sqlite and Microsoft.Data.SqlClient for the queries
    $script:SyncScript = Join-Path (Get-RepoRoot) 'docs/Invoke-FullStorySync.ps1'
}

Describe 'Scheduled Sync-FullStoryEvents (<Kind>)' -ForEach $Destinations {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '5', '--events-per-bundle', '400')
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "sync-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        New-Item -ItemType Directory $Dir | Out-Null
        $script:Dest = New-TestDestination $Kind
        $script:TaskDest = New-TestDestination $Kind
        $script:Bundles = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
        # One scheduled run: a fresh pwsh -NonInteractive with the key only in the environment; returns exit code and summary.
        $script:Run = {
            param([string] $Extra = '')
            $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$ModulePath'
Connect-FullStory -BaseUri '$($Emulator.BaseUri)' -RetryDelay 00:00:00.05 -MaxAttempts 2
# The summary is written before the terminating error of a failed run: keep it with -OutVariable and print it either way.
# (One line: pwsh -Command - runs standard input line by line and stops at a try whose finally is on the next line.)
try { Sync-FullStoryEvents $($Dest.Argument) -Start 2000-01-01 $Extra -WarningAction SilentlyContinue -OutVariable summary | Out-Null } finally { `$summary | Select-Object Outcome, Batches, Rows, Error | ConvertTo-Json -Compress }
"@
            $r = Invoke-FreshPwsh -Script $script -Environment @{ FULLSTORY_API_KEY = $Emulator.ApiKey }
            $json = ($r.Output -split "`n" | Where-Object { $_ -like '{*' } | Select-Object -Last 1)
            [pscustomobject]@{ ExitCode = $r.ExitCode; Summary = if ($json) { $json | ConvertFrom-Json }; Errors = $r.Errors; Output = $r.Output }
        }
    }
    AfterAll { Stop-TestEmulator $Emulator; Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue; Remove-TestDestination $Dest; Remove-TestDestination $TaskDest }
    BeforeEach { if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason } }

    It 'loads everything on the first run, with the key from FULLSTORY_API_KEY and no prompt' {
        if ($Dest.SkipReason) { return }
        $r = & $Run
        $r.ExitCode | Should -Be 0 -Because $r.Errors
        $r.Summary.Outcome | Should -Be 'Succeeded'
        $r.Summary.Batches | Should -Be 5
        $r.Summary.Rows | Should -Be 2000
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be 2000
    }
    It 'loads only new bundles on the next run' {
        if ($Dest.SkipReason) { return }
        Invoke-Emulator $Emulator '/_emulator/bundles?count=2' -Method Post | Out-Null
        $r = & $Run
        $r.Summary.Batches | Should -Be 2
        $r.Summary.Rows | Should -Be 800
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be 2800
        Invoke-DestinationQuery $Dest 'select count(distinct _fs_batch) from {events}' | Should -Be 7
    }
    It 'exits non-zero when a run fails, records the error, and the next run completes exactly' {
        if ($Dest.SkipReason) { return }
        Invoke-Emulator $Emulator '/_emulator/bundles?count=2' -Method Post | Out-Null
        $new = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles | Select-Object -Last 2
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'get'; BundleId = $new[1].Id; Kind = 'Status'; Status = 500; Times = 0 }) | Out-Null
        $failed = & $Run
        $failed.ExitCode | Should -Not -Be 0
        ($failed.Output + $failed.Errors) | Should -Match 'FullStory.SyncFailed|HTTP 500'
        $failed.Summary.Outcome | Should -Be 'Failed'
        $failed.Summary.Rows | Should -Be 400   # the bundle before the failing one landed
        $To = $Dest.Params
        $history = Get-FullStorySyncHistory @To -Last 1
        $history.Outcome | Should -Be 'Failed'
        $history.Error | Should -Match 'HTTP 500'
        $history.Error | Should -Not -Match ([regex]::Escape($Emulator.ApiKey))

        Invoke-Emulator $Emulator '/_emulator/faults' -Method Delete | Out-Null
        $ok = & $Run
        $ok.ExitCode | Should -Be 0
        $ok.Summary.Batches | Should -Be 1
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be 3600
        Invoke-DestinationQuery $Dest 'select count(*) from (select _fs_batch from {events} group by _fs_batch having count(*) <> 400) as b' | Should -Be 0
        (Get-FullStorySyncHistory @To).Count | Should -Be 4
    }
    It 'runs the documented task script end to end, and fails it cleanly without a key' {
        if ($Dest.SkipReason) { return }
        Invoke-Emulator $Emulator '/_emulator/faults' -Method Delete | Out-Null
        $target = if ($Kind -eq 'SQLite') { "-DatabasePath '$($TaskDest.Db)'" } else { $TaskDest.Argument }
        $r = Invoke-FreshPwsh -Script "& '$SyncScript' $target -Start 2000-01-01 -ModulePath '$ModulePath' -BaseUri '$($Emulator.BaseUri)'; exit `$LASTEXITCODE" -Environment @{ FULLSTORY_API_KEY = $Emulator.ApiKey }
        $r.ExitCode | Should -Be 0 -Because ($r.Output + $r.Errors)
        $r.Output | Should -Match 'Succeeded, 9 batches, 3,600 rows'
        Invoke-DestinationQuery $TaskDest 'select count(*) from {events}' | Should -Be 3600
        ($r.Output + $r.Errors) | Should -Not -Match ([regex]::Escape($Emulator.ApiKey))

        $r.Output | Should -Match '(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z run \d+: Succeeded.*data through \d{4}-\d\d-\d\dT00:00:00\.000Z, up to date: True'

        $none = Invoke-FreshPwsh -Script "& '$SyncScript' $target -ModulePath '$ModulePath'; exit `$LASTEXITCODE" -Environment @{ FULLSTORY_API_KEY = '' }
        $none.ExitCode | Should -Be 1
        ($none.Output + $none.Errors) | Should -Match 'No FullStory API key'
    }
}

Describe 'The scheduled-task script on stale data' {
    BeforeAll {
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "sync-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        New-Item -ItemType Directory $Dir | Out-Null
    }
    AfterAll { Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue }

    It 'says how far behind stale data is as days, hours and minutes, not a raw TimeSpan' {
        $old = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '10', '--first-bundle-start', '2026-01-01')
        try {
            $staleDb = Join-Path $Dir 'stale.db'
            $r = Invoke-FreshPwsh -Script "& '$SyncScript' -DatabasePath '$staleDb' -Start 2025-12-01 -ModulePath '$ModulePath' -BaseUri '$($old.BaseUri)'; exit `$LASTEXITCODE" -Environment @{ FULLSTORY_API_KEY = $old.ApiKey }
            $r.ExitCode | Should -Be 0 -Because ($r.Output + $r.Errors)
            $all = $r.Output + $r.Errors
            $all | Should -Match 'data through 2026-01-03T00:00:00\.000Z, up to date: False'
            $all | Should -Match 'The data is \d+d \d{1,2}h \d{1,2}m behind'
            $all | Should -Not -Match '\d+\.\d\d:\d\d:\d\d'
        }
        finally { Stop-TestEmulator $old }
    }
}
