# Issue 12's repros, run as a user types them: each must land every event exactly once or stop with an error that loses
# nothing. Counts are checked against the emulator's own dataset and against (source, position) identities in the table.
# Every repro runs against the embedded SQLite database and against SQL Server (FULLSTORY_SQLSERVER_CONNECTION_STRING;
# skipped with the reason when there is none).
BeforeDiscovery {
    $script:Destinations = @(@{ Kind = 'SQLite' }, @{ Kind = 'SqlServer' })
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.Sqlite and Microsoft.Data.SqlClient for the queries

    # Every (source, position) once: the number of rows, and the number of distinct identities, must both equal $Expected.
    function Assert-EachEventOnce($Dest, [long] $Expected) {
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be $Expected
        Invoke-DestinationQuery $Dest 'select count(*) from (select distinct _fs_batch, _fs_index from {events} where _fs_index is not null) as ids' | Should -Be $Expected
    }
    function Get-CompleteSources($Dest) { Invoke-DestinationQuery $Dest "select count(*) from fullstory_sync_state where is_complete = 1 and table_name = '{table}'" }
}

Describe 'Nothing lost (<Kind>): partial and sorted pipelines' -ForEach $Destinations {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '3000')
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay '00:00:00.05' -WarningAction SilentlyContinue
        $script:Bundles = (Invoke-Emulator $Emulator '/_emulator/dataset').bundles
        $script:Total = ($Bundles | Measure-Object -Property EventCount -Sum).Sum
    }
    AfterAll { Stop-TestEmulator $Emulator; Disconnect-FullStory }
    BeforeEach { $script:Dest = New-TestDestination $Kind; $script:To = $Dest.Params }
    AfterEach { Remove-TestDestination $Dest }

    It 'a filtered export does not block the full load: the bundle and then a sync land every event once' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        $Total | Should -Be 6000
        $clicks = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1 | Receive-FullStoryEvents |
            Where-Object EventType -eq click | Export-FullStoryEvents @To
        $clicks.Rows | Should -BeGreaterThan 0
        $clicks.Rows | Should -BeLessThan 3000
        $clicks.IsComplete | Should -BeFalse

        # The identical filtered command again adds nothing.
        (Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1 | Receive-FullStoryEvents |
            Where-Object EventType -eq click | Export-FullStoryEvents @To).Rows | Should -Be 0

        $whole = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Select-Object -First 1 | Export-FullStoryEvents @To
        $whole.AlreadyLoaded | Should -BeFalse
        $whole.Rows | Should -Be 3000
        $whole.ReplacedRows | Should -Be $clicks.Rows
        Assert-EachEventOnce $Dest 3000

        $sync = Sync-FullStoryEvents @To -Start 2000-01-01 -WarningAction SilentlyContinue
        $sync.Outcome | Should -Be 'Succeeded'
        $sync.Rows | Should -Be 3000 # only the second bundle
        Assert-EachEventOnce $Dest $Total
        Get-CompleteSources $Dest | Should -Be 2
    }

    It 'events sorted across sources all land, once, and both bundles are recorded complete' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        $reports = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Sort-Object EventType |
            Export-FullStoryEvents @To -WarningVariable warnings
        $warnings | Should -BeNullOrEmpty
        ($reports | Measure-Object Rows -Sum).Sum | Should -Be $Total
        Assert-EachEventOnce $Dest $Total
        Get-CompleteSources $Dest | Should -Be 2

        # Again, and a sync: nothing more.
        $again = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Sort-Object EventType | Export-FullStoryEvents @To
        ($again | Measure-Object Rows -Sum).Sum | Should -Be 0
        (Sync-FullStoryEvents @To -Start 2000-01-01 -WarningAction SilentlyContinue).Rows | Should -Be 0
        Assert-EachEventOnce $Dest $Total
    }

    It 'Select-Object -First upstream loads what it passed, and the rest lands later' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        $first = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Select-Object -First 10 | Export-FullStoryEvents @To
        $first.Rows | Should -Be 10
        $first.IsComplete | Should -BeFalse
        $rest = Get-FullStoryBundle -Start 2000-01-01 -WarningAction SilentlyContinue | Receive-FullStoryEvents | Export-FullStoryEvents @To
        ($rest | Measure-Object Rows -Sum).Sum | Should -Be ($Total - 10)
        Assert-EachEventOnce $Dest $Total
    }
}

Describe 'Nothing lost (<Kind>): an existing table that cannot hold the data' -ForEach @(
    @{ Kind = 'SQLite'; IndvIdType = 'TEXT'; EventStartType = 'INTEGER' }
    @{ Kind = 'SqlServer'; IndvIdType = 'nvarchar(50)'; EventStartType = 'int' }
) {
    BeforeEach { $script:Dest = New-TestDestination $Kind; $script:To = $Dest.Params }
    AfterEach { Remove-TestDestination $Dest }

    It 'is refused before anything is altered or loaded, naming the table, columns, types and what to do' {
        if ($Dest.SkipReason) { Set-ItResult -Skipped -Because $Dest.SkipReason; return }
        $sample = Join-Path (Get-RepoRoot) 'tests/data/samples/bundle-legacy-fields.json'
        # A table the user made earlier: ids as text.
        if ($Kind -eq 'SQLite') {
            Receive-FullStoryEvent -Path $sample | Select-Object -First 1 | Export-FullStoryEvent -Path $Dest.Db -Table other | Out-Null
            $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -First 1
            $c = [Activator]::CreateInstance($assembly.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true), @("Data Source=$($Dest.Db)"))
            try { $c.Open(); $cmd = $c.CreateCommand(); $cmd.CommandText = 'CREATE TABLE events (IndvId TEXT, EventStart INTEGER, foo INT)'; $cmd.ExecuteNonQuery() | Out-Null }
            finally { $c.Dispose() }
            $columns = "select count(*) from pragma_table_info('events')"
        }
        else {
            Invoke-DestinationQuery $Dest 'CREATE TABLE {events} (IndvId nvarchar(50) NULL, EventStart int NULL, foo int NULL);' | Out-Null
            $columns = "select count(*) from INFORMATION_SCHEMA.COLUMNS where TABLE_SCHEMA = N'dbo' and TABLE_NAME = N'{table}'"
        }

        $err = $null
        { Receive-FullStoryEvent -Path $sample | Export-FullStoryEvent @To -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.IncompatibleTable*'
        try { Receive-FullStoryEvent -Path $sample | Export-FullStoryEvent @To -ErrorAction Stop } catch { $err = $_ }
        $err.Exception.Message | Should -Match ([regex]::Escape("IndvId is $IndvIdType"))
        $err.Exception.Message | Should -Match ([regex]::Escape("EventStart is $EventStartType"))
        $err.Exception.Message | Should -Match '-Table'
        $err.ErrorDetails.RecommendedAction | Should -Match '-Table'
        Invoke-DestinationQuery $Dest $columns | Should -Be 3
        Invoke-DestinationQuery $Dest 'select count(*) from {events}' | Should -Be 0
    }
}
