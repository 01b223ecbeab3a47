# Issue 12's repros, run as a user types them: each must land every event exactly once or stop with an error that loses
# nothing. Counts are checked against the emulator's own dataset and against (source, position) identities in the table.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.Sqlite for Invoke-SqliteQuery

    # Every (source, position) once: the number of rows, and the number of distinct identities, must both equal $Expected.
    function Assert-EachEventOnce([string] $Db, [long] $Expected) {
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from events' | Should -Be $Expected
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from (select distinct _fs_batch, _fs_index from events where _fs_index is not null)' | Should -Be $Expected
    }
}

Describe 'Nothing lost: partial and sorted pipelines' {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '3000')
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -WarningAction SilentlyContinue
        $script:Bundles = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
        $script:Total = ($Bundles | Measure-Object -Property EventCount -Sum).Sum
    }
    AfterAll { Stop-TestEmulator $Emulator; Disconnect-FullStory }
    BeforeEach { $script:Db = Join-Path ([IO.Path]::GetTempPath()) "lost-$([guid]::NewGuid()).db" }
    AfterEach { Remove-Item "$Db*" -ErrorAction SilentlyContinue }

    It 'a filtered export does not block the full load: the bundle and then a sync land every event once' {
        $Total | Should -Be 6000
        $clicks = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1 | Receive-FullStoryEvents |
            Where-Object EventType -eq click | Export-FullStoryEvents -Path $Db
        $clicks.Rows | Should -BeGreaterThan 0
        $clicks.Rows | Should -BeLessThan 3000
        $clicks.IsComplete | Should -BeFalse

        # The identical filtered command again adds nothing.
        (Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1 | Receive-FullStoryEvents |
            Where-Object EventType -eq click | Export-FullStoryEvents -Path $Db).Rows | Should -Be 0

        $whole = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1 | Export-FullStoryEvents -Path $Db
        $whole.AlreadyLoaded | Should -BeFalse
        $whole.Rows | Should -Be 3000
        $whole.ReplacedRows | Should -Be $clicks.Rows
        Assert-EachEventOnce $Db 3000

        $sync = Sync-FullStoryEvents -Path $Db -Start 2000-01-01 -WarningAction SilentlyContinue
        $sync.Outcome | Should -Be 'Succeeded'
        $sync.Rows | Should -Be 3000 # only the second bundle
        Assert-EachEventOnce $Db $Total
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from fullstory_sync_state where is_complete = 1' | Should -Be 2
    }

    It 'events sorted across sources all land, once, and both bundles are recorded complete' {
        $reports = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Sort-Object EventType |
            Export-FullStoryEvents -Path $Db -WarningVariable warnings
        $warnings | Should -BeNullOrEmpty
        ($reports | Measure-Object Rows -Sum).Sum | Should -Be $Total
        Assert-EachEventOnce $Db $Total
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from fullstory_sync_state where is_complete = 1' | Should -Be 2

        # Again, and a sync: nothing more.
        $again = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Sort-Object EventType | Export-FullStoryEvents -Path $Db
        ($again | Measure-Object Rows -Sum).Sum | Should -Be 0
        (Sync-FullStoryEvents -Path $Db -Start 2000-01-01 -WarningAction SilentlyContinue).Rows | Should -Be 0
        Assert-EachEventOnce $Db $Total
    }

    It 'Select-Object -First upstream loads what it passed, and the rest lands later' {
        $first = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Select-Object -First 10 | Export-FullStoryEvents -Path $Db
        $first.Rows | Should -Be 10
        $first.IsComplete | Should -BeFalse
        $rest = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Export-FullStoryEvents -Path $Db
        ($rest | Measure-Object Rows -Sum).Sum | Should -Be ($Total - 10)
        Assert-EachEventOnce $Db $Total
    }
}

Describe 'Nothing lost: files that stop early or are not FullStory data' {
    BeforeEach {
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) ('lost-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
        New-Item -ItemType Directory -Path $Dir | Out-Null
        $script:Db = Join-Path $Dir 'f.db'
    }
    AfterEach { Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue }

    It 'a gzip file cut at a line boundary is an error, and the complete file later lands the rest, once' {
        $lines = 0..499 | ForEach-Object { '{"EventStart":"2026-11-20T00:00:' + ('{0:00}' -f ($_ % 60)) + '.' + ('{0:000}' -f $_) + 'Z","EventType":"click","UserId":' + (1000 + $_) + '}' }
        $ms = [IO.MemoryStream]::new()
        $gz = [IO.Compression.GZipStream]::new($ms, [IO.Compression.CompressionLevel]::Optimal, $true)
        $w = [IO.StreamWriter]::new($gz, [Text.UTF8Encoding]::new($false))
        foreach ($l in $lines[0..199]) { $w.Write($l + "`n") }
        $w.Flush(); $gz.Flush() # what a killed copy leaves: whole deflate blocks, no end block, no trailer
        $cut = $ms.ToArray()
        foreach ($l in $lines[200..499]) { $w.Write($l + "`n") }
        $w.Dispose()
        $full = $ms.ToArray()
        $file = Join-Path $Dir 'export.ndjson.gz'
        [IO.File]::WriteAllBytes($file, $cut)

        $reports = Receive-FullStoryEvent -Path $file -ErrorVariable err -ErrorAction SilentlyContinue | Export-FullStoryEvent -Path $Db
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -Match '^FullStory.InvalidEventData'
        "$($err[0])" | Should -Match ([regex]::Escape($file))
        $reports.IsComplete | Should -Not -Contain $true
        $partial = ($reports | Measure-Object Rows -Sum).Sum
        $partial | Should -BeLessOrEqual 200
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from fullstory_sync_state where is_complete = 1' | Should -Be 0

        [IO.File]::WriteAllBytes($file, $full)
        $rest = Receive-FullStoryEvent -Path $file | Export-FullStoryEvent -Path $Db
        ($rest | Measure-Object Rows -Sum).Sum | Should -Be (500 - $partial)
        $rest[-1].IsComplete | Should -BeTrue
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from events' | Should -Be 500
        Invoke-SqliteQuery -Path $Db -Query 'select count(distinct UserId) from events' | Should -Be 500
    }

    It 'JSON that is not FullStory export data is an error, not events' {
        $one = Join-Path $Dir 'hello.json'; Set-Content $one '{"hello":"world","items":[1,2,3]}'
        $two = Join-Path $Dir 'foo.json'; Set-Content $two '[{"foo":1},{"bar":2}]'
        $reports = Receive-FullStoryEvent -Path $one, $two -ErrorVariable err -ErrorAction SilentlyContinue | Export-FullStoryEvent -Path $Db
        $reports | Should -BeNullOrEmpty
        $err.Count | Should -Be 2
        $err | ForEach-Object { $_.FullyQualifiedErrorId | Should -Match '^FullStory.InvalidEventData' }
        $Db | Should -Not -Exist
    }
}

Describe 'Nothing lost: an existing table that cannot hold the data' {
    BeforeEach { $script:Db = Join-Path ([IO.Path]::GetTempPath()) "lost-$([guid]::NewGuid()).db" }
    AfterEach { Remove-Item "$Db*" -ErrorAction SilentlyContinue }

    It 'is refused before anything is altered or loaded, naming the table, columns, types and what to do' {
        $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'
        # A table the user made earlier: ids as text.
        Receive-FullStoryEvent -Path $sample | Select-Object -First 1 | Export-FullStoryEvent -Path $Db -Table other | Out-Null
        $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -First 1
        $c = [Activator]::CreateInstance($assembly.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true), @("Data Source=$Db"))
        try { $c.Open(); $cmd = $c.CreateCommand(); $cmd.CommandText = 'CREATE TABLE events (IndvId TEXT, EventStart INTEGER, foo INT)'; $cmd.ExecuteNonQuery() | Out-Null }
        finally { $c.Dispose() }

        $err = $null
        { Receive-FullStoryEvent -Path $sample | Export-FullStoryEvent -Path $Db -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.IncompatibleTable*'
        try { Receive-FullStoryEvent -Path $sample | Export-FullStoryEvent -Path $Db -ErrorAction Stop } catch { $err = $_ }
        $err.Exception.Message | Should -Match 'IndvId is TEXT'
        $err.Exception.Message | Should -Match 'EventStart is INTEGER'
        $err.Exception.Message | Should -Match '-Table'
        $err.ErrorDetails.RecommendedAction | Should -Match '-Table'
        Invoke-SqliteQuery -Path $Db -Query "select count(*) from pragma_table_info('events')" | Should -Be 3
        Invoke-SqliteQuery -Path $Db -Query 'select count(*) from events' | Should -Be 0
    }
}
