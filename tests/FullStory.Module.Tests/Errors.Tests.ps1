# Errors say what to fix: a stable FullStory.* id (never an exception type such as System.AggregateException), the cause
# in words, and a recommended action that fits it. Also the small things a new user trips over in the first hour.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '20')
    Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay 00:00:00.05
    $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "fs-errors-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    New-Item -ItemType Directory $Dir | Out-Null
    $script:NotADatabase = Join-Path $Dir 'notes.txt'
    Set-Content -Path $NotADatabase -Value ('not a database ' * 400)
    # Runs the command and returns its terminating error (or fails the test if there was none).
    function Get-Failure([scriptblock] $Command) {
        try { & $Command | Out-Null } catch { return $_ }
        throw 'The command did not fail.'
    }
}
AfterAll {
    Stop-TestEmulator $Emulator
    Disconnect-FullStory
    Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Database paths that cannot work' {
    It 'Sync -Path (a folder): names the folder and the file to pass instead' {
        $e = Get-Failure { Sync-FullStoryEvent -Path $Dir -WarningAction SilentlyContinue }
        $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidPath,*'
        $e.Exception.Message | Should -BeLike "*'$Dir' is a folder*"
        $e.ErrorDetails.RecommendedAction | Should -BeLike "*$(Join-Path $Dir 'fullstory.db')*"
        $e.Exception.Message | Should -Not -Match 'SQLite Error'
    }
    It 'Sync -Path (a file in a folder that does not exist): names the folder to create; nothing is created' {
        $db = Join-Path $Dir 'nodir/sub/x.db'
        $e = Get-Failure { Sync-FullStoryEvent -Path $db -WarningAction SilentlyContinue }
        $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidPath,*'
        $e.Exception.Message | Should -BeLike "*folder '$(Join-Path $Dir 'nodir/sub')'*does not exist*"
        $e.ErrorDetails.RecommendedAction | Should -BeLike '*New-Item -ItemType Directory*'
        Test-Path (Join-Path $Dir 'nodir') | Should -BeFalse
    }
    It 'Get-FullStorySyncHistory -Path (a missing file): says the database does not exist, and does not create it' {
        $missing = Join-Path $Dir 'missing.db'
        $e = Get-Failure { Get-FullStorySyncHistory -Path $missing }
        $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.DatabaseNotFound,*'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $e.Exception.Message | Should -BeLike "*'$missing' does not exist*"
        Test-Path $missing | Should -BeFalse
    }
    It 'Get-FullStorySyncHistory -Path (a folder): says it is a folder' {
        (Get-Failure { Get-FullStorySyncHistory -Path $Dir }).FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidPath,*'
    }
}

Describe 'Failures from the database are unwrapped, with a FullStory.* id and advice that fits' {
    It 'Get-FullStorySyncHistory on a file that is not a database: FullStory.NotADatabase, not an exception type' {
        $e = Get-Failure { Get-FullStorySyncHistory -Path $NotADatabase }
        $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.NotADatabase,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidData'
        $e.Exception | Should -Not -BeOfType [AggregateException]
        $e.ErrorDetails.RecommendedAction | Should -Match 'not a SQLite database'
    }
    It 'Sync into a file that is not a database: FullStory.SyncFailed, categorised and advised by its cause' {
        $e = Get-Failure { Sync-FullStoryEvent -Path $NotADatabase -WarningAction SilentlyContinue }
        $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.SyncFailed,*'
        $e.CategoryInfo.Category | Should -Be 'InvalidData'
        $e.Exception.Message | Should -Match 'file is not a database'
        $e.Exception.Message | Should -Not -Match 'One or more errors'
        $e.ErrorDetails.RecommendedAction | Should -Match 'not a SQLite database.*next run retries'
    }
    It "-ConnectionString 'Serverr=...': names the keyword, suggests Server, never echoes the password" {
        foreach ($command in { Sync-FullStoryEvent -ConnectionString 'Serverr=sql01;Database=db;Password=Pa55word!x' -WarningAction SilentlyContinue },
                             { Get-FullStorySyncHistory -ConnectionString 'Serverr=sql01;Database=db;Password=Pa55word!x' }) {
            $e = Get-Failure $command
            $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidConnectionString,*'
            $shown = $e.ErrorDetails.Message
            $shown | Should -Match "'serverr' is not supported \(did you mean 'Server'\?\)"
            $shown | Should -Not -Match "\(Parameter 'connectionString'\)"
            ($e | Out-String) + ($e.Exception | Format-List * -Force | Out-String) | Should -Not -Match 'Pa55word'
        }
    }
}

Describe 'The legacy-API deprecation warning on scheduled runs' {
    It 'appears on the first bundle sync into a destination, not on the runs after it (each a new process)' {
        $db = Join-Path $Dir 'scheduled.db'
        $script = @"
Import-Module '$ModulePath'
Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)'
`$s = Sync-FullStoryEvent -Path '$db' -Start 2000-01-01 -WarningVariable w -WarningAction SilentlyContinue
'RESULT ' + (@{ Outcome = `$s.Outcome; Warnings = @(`$w | ForEach-Object Message) } | ConvertTo-Json -Compress)
"@
        $runs = foreach ($i in 1..2) {
            $r = Invoke-FreshPwsh -Script $script
            ($r.Output -split "`n" | Where-Object { $_ -like 'RESULT *' }).Substring(7) | ConvertFrom-Json
        }
        $runs.Outcome | Should -Be @('Succeeded', 'Succeeded')
        @($runs[0].Warnings) -join ' ' | Should -Match 'deprecated the legacy bundle export API'
        @($runs[1].Warnings).Count | Should -Be 0
    }
}

Describe 'Counts read as English' {
    It "says '1 event', not '1 events'" {
        $one = Join-Path $Dir 'one.json'
        Set-Content -Path $one -Value '[{"UserId":1,"SessionId":2,"PageId":3,"EventStart":"2026-01-01T00:00:00.000Z","EventType":"click"}]'
        $verbose = Receive-FullStoryEvent -Path $one -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message
        $verbose | Should -Contain "$($one): 1 event."
        $verbose | Should -Contain 'Wrote 1 event.'
        $verbose -join "`n" | Should -Not -Match '\b1 events\b'
    }
}
