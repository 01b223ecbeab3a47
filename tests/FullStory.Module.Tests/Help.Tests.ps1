# Get-Help for every cmdlet and about_FullStory, from the compiled help of the packaged module; every example runs
# against the emulator and its output is checked.
BeforeDiscovery {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Cmdlets = @((Get-Module FullStory).ExportedCmdlets.Keys | Sort-Object)
    # Examples that cannot run here, with the reason (shown as the skip reason of their test). The SQL Server examples
    # run against FULLSTORY_SQLSERVER_CONNECTION_STRING when it is set (build.ps1 -Task Test starts a TDS server for them).
    $script:SqlServerExamples = 'Export-FullStoryEvent/4', 'Sync-FullStoryEvent/4', 'Get-FullStorySyncHistory/3'
    $script:NotRunnable = @{ 'Sync-FullStoryEvent/3' = 'Register-ScheduledTask: Windows Task Scheduler only, and it changes the machine' }
    if (-not $env:FULLSTORY_SQLSERVER_CONNECTION_STRING) {
        foreach ($k in $SqlServerExamples) { $NotRunnable[$k] = 'needs a SQL Server: set FULLSTORY_SQLSERVER_CONNECTION_STRING (build.ps1 -Task Test starts the TDS stand-in when ../shared/tds is beside the repository)' }
    }
    $script:Examples = foreach ($c in $Cmdlets) {
        $i = 0
        foreach ($e in (Get-Help $c -Full).examples.example) {
            $i++
            $key = "$c/$i"
            @{ Key = $key; Cmdlet = $c; Number = $i; Code = [string]$e.code; Title = ([string]$e.title).Trim(' -'); Skip = $NotRunnable.ContainsKey($key); Reason = $NotRunnable[$key] }
        }
    }
}

BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    Import-Module (Get-TestModulePath) -Force
    $script:Common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
}

Describe 'Get-Help <_>' -ForEach $Cmdlets {
    BeforeAll {
        $script:Name = $_
        $script:Help = Get-Help $Name -Full
        $script:Text = $Help | Out-String -Width 200
    }
    It 'comes from the compiled help file, with a synopsis and a description' {
        $Help.Synopsis | Should -Not -BeNullOrEmpty
        $Help.Synopsis | Should -Not -Match "^\s*$Name\s" -Because 'a generated stub shows the syntax as the synopsis'
        ($Help.description.Text -join ' ').Length | Should -BeGreaterThan 80
        $Text | Should -Match 'DESCRIPTION'
    }
    It 'describes every parameter' {
        $params = @((Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $Common })
        foreach ($p in $params) {
            $entry = $Help.parameters.parameter | Where-Object Name -eq $p
            $entry | Should -Not -BeNullOrEmpty -Because "-$p must be in the help"
            ($entry.description.Text -join ' ').Trim().Length | Should -BeGreaterThan 10 -Because "-$p needs a description"
            $Text | Should -Match "-$p\b"
        }
    }
    It 'speaks to users: no project-internal words, and a plural alias is named as an alias' {
        $Text | Should -Not -Match 'design card'
        foreach ($alias in (Get-Alias -Definition $Name -ErrorAction SilentlyContinue).Name) {
            ($Help.description.Text -join ' ') | Should -Match "$alias \(plural\) is an alias of this command"
        }
    }
    It 'has at least two examples, each with code and an explanation' {
        @($Help.examples.example).Count | Should -BeGreaterOrEqual 2
        foreach ($e in $Help.examples.example) {
            $e.code | Should -Not -BeNullOrEmpty
            ($e.remarks.Text -join ' ').Trim() | Should -Not -BeNullOrEmpty
        }
    }
    It 'states its inputs and outputs, matching [OutputType], and links related topics' {
        $Help.inputTypes.inputType | Should -Not -BeNullOrEmpty
        $outputs = @($Help.returnValues.returnValue.type.name)
        $declared = @((Get-Command $Name).OutputType.Name | Where-Object { $_ -ne 'System.Void' })
        foreach ($t in $declared) { $outputs | Should -Contain $t }
        @($Help.relatedLinks.navigationLink.linkText) | Should -Contain 'about_FullStory'
    }
}

Describe 'Get-Help about_FullStory' {
    It 'shows the topic: getting started, scheduling, the table schema and a session timeline' {
        $text = Get-Help about_FullStory | Out-String
        $text | Should -Match 'about_FullStory'
        foreach ($heading in 'SHORT DESCRIPTION', 'GETTING STARTED', 'SCHEDULING', 'THE TABLE SCHEMA', "QUERYING ONE SESSION'S TIMELINE") {
            $text | Should -Match ([regex]::Escape($heading))
        }
        foreach ($word in 'fullstory_sync_state', 'fullstory_sync_runs', 'datetime2(3)', '_fs_batch', 'Register-ScheduledTask', 'WHERE SessionId') {
            $text | Should -Match ([regex]::Escape($word))
        }
    }
    It 'lists every column of the events table, and of the sync tables' {
        $assembly = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'FullStory.Engine' } | Select-Object -First 1
        $columns = @($assembly.GetType('FullStory.Engine.Loading.EventTableModel', $true)::FixedColumns | ForEach-Object Name)
        $columns.Count | Should -BeGreaterThan 60
        $text = Get-Help about_FullStory | Out-String
        foreach ($c in $columns) { $text | Should -Match "\b$([regex]::Escape($c))\b" -Because "column $c is in the events table" }
        foreach ($c in 'batch_key', 'range_start', 'range_end', 'row_count', 'byte_count', 'loaded_at', 'run_id', 'started_at', 'ended_at', 'outcome', 'retries', 'data_through', 'host') {
            $text | Should -Match "\b$c\b"
        }
    }
}

Describe 'Build-Help' {
    It 'fails the build when a cmdlet parameter has no description, or the markdown describes one that does not exist' {
        $docs = Join-Path ([IO.Path]::GetTempPath()) "fs-docs-$([guid]::NewGuid())"
        Copy-Item (Join-Path (Get-RepoRoot) 'docs/help') $docs -Recurse
        try {
            $file = Join-Path $docs 'Sync-FullStoryEvent.md'
            $md = (Get-Content -Raw $file) -replace '(?s)### -Lag\r?\n.*?(?=### -SegmentId)', ''
            $md = $md -replace '### -LockWait', "### -Retries`
No such parameter.`
`
### -LockWait"
            Set-Content -LiteralPath $file -Value $md
            $builder = Join-Path (Get-RepoRoot) 'module/build/Build-Help.ps1'
            $r = Invoke-FreshPwsh -Script "& '$builder' -SourceDirectory '$docs' -ModuleDirectory '$(Split-Path (Get-TestModulePath))'; exit 0`n"
            $r.ExitCode | Should -Not -Be 0
            $r.Errors + $r.Output | Should -Match 'Sync-FullStoryEvent: parameter -Lag has no description'
            $r.Errors + $r.Output | Should -Match 'describes -Retries, which the cmdlet does not have'
        }
        finally { Remove-Item $docs -Recurse -Force -ErrorAction SilentlyContinue }
    }
}

Describe 'The examples run against the emulator' {
    BeforeAll {
        $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '4', '--events-per-bundle', '60', '--pending-polls', '1')
        # What the examples expect a user to have: the key in the environment, a base URI; Connect-FullStory pointed
        # at the emulator (a user's would go to FullStory), with short retry and poll delays.
        $script:SavedKey = $env:FULLSTORY_API_KEY
        $env:FULLSTORY_API_KEY = $Emulator.ApiKey
        $global:BaseUri = $Emulator.BaseUri
        $global:PSDefaultParameterValues['Connect-FullStory:BaseUri'] = $Emulator.BaseUri
        $global:PSDefaultParameterValues['Connect-FullStory:PollInterval'] = [timespan]'00:00:00.05'
        $global:PSDefaultParameterValues['Connect-FullStory:RetryDelay'] = [timespan]'00:00:00.05'

        # What each example produces, checked: $r.Output (pipeline), $r.Streams (all other records), $r.Dir (its folder).
        $script:Checks = @{
            'Connect-FullStory/1'        = { param($r) $s = @($r.Output)[-1]; $s.GetType().Name | Should -Be 'FullStorySession'; $s.MaskedApiKey | Should -Match '\*\*\*\*' }
            'Connect-FullStory/2'        = { param($r) $s = @($r.Output)[-1]; $s.Retry.MaxAttempts | Should -Be 10; $s.Retry.BaseDelay | Should -Be ([timespan]::FromSeconds(2)); (Get-FullStorySession).ConnectedAt | Should -Be $s.ConnectedAt }
            'Connect-FullStory/3'        = { param($r) @($r.Output)[-1].GetType().Name | Should -Be 'FullStorySession' }
            'Connect-FullStory/4'        = { param($r) $s = @($r.Output)[-1]; $s.ApiBaseUri.AbsoluteUri | Should -Be $Emulator.BaseUri; $s.Retry.PollInterval | Should -Be ([timespan]::FromSeconds(1)) }
            'Disconnect-FullStory/1'     = { param($r) @($r.Output).Count | Should -Be 0; ($r.Streams | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message | Should -Match 'Disconnected'; Get-FullStorySession -ErrorAction SilentlyContinue | Should -BeNullOrEmpty }
            'Disconnect-FullStory/2'     = { param($r) @($r.Output)[0].Count | Should -Be 4; Get-FullStorySession -ErrorAction SilentlyContinue | Should -BeNullOrEmpty }
            'Get-FullStorySession/1'     = { param($r) $text = $r.Output | Out-String; $text | Should -Match 'Region\s+ApiBaseUri\s+ApiKey'; $text | Should -Not -Match ([regex]::Escape($Emulator.ApiKey)) }
            'Get-FullStorySession/2'     = { param($r) @($r.Output)[0].MaxAttempts | Should -Be 6 }
            'Get-FullStoryBundle/1'      = { param($r) @($r.Output).Count | Should -Be 4; @($r.Output)[0].GetType().Name | Should -Be 'FullStoryBundle' }
            'Get-FullStoryBundle/2'      = { param($r) @($r.Output).Count | Should -Be 3; @($r.Streams | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Count | Should -Be 0 }
            'Get-FullStoryBundle/3'      = { param($r) ($r.Output | Measure-Object Count -Sum).Sum | Should -Be 60; @($r.Output)[0].Name | Should -Not -BeNullOrEmpty }
            'Receive-FullStoryEvent/1'   = { param($r) @(Import-Csv (Join-Path $r.Dir 'events.csv')).Count | Should -Be 240 }
            'Receive-FullStoryEvent/2'   = { param($r) @($r.Output).Count | Should -BeGreaterThan 0; $r.Output.EventType | Select-Object -Unique | Should -Be 'click'; $r.Output[0].Source | Should -BeLike 'export:everyone:*' }
            'Receive-FullStoryEvent/3'   = { param($r) @($r.Output)[-1].Count | Should -Be 240; @(Get-ChildItem (Join-Path $r.Dir 'archive') -Filter '*.json.gz').Count | Should -Be 4 }
            'Receive-FullStoryEvent/4'   = { param($r) $g = @($r.Output); $g.Count | Should -Be 2; ($g | ForEach-Object Count) | Should -Be @(60, 60); $g[0].Name | Should -BeLike 'file:*bundle-*.json.gz' }
            'Receive-FullStoryEvent/5'   = { param($r) $g = @($r.Output); $g.Count | Should -Be 2; ($g | ForEach-Object Count) | Should -Be @(60, 60); $g[0].Name | Should -BeLike 'bundle:*' }
            'Receive-FullStoryEvent/6'   = { param($r) ($r.Output | Out-String) | Should -Match 'EventStart\s+EventType\s+PageUrl' }
            'Receive-FullStoryEvent/7'   = { param($r) $g = @($r.Output); $g.Count | Should -BeGreaterThan 0; $g | ForEach-Object { $_.Name | Should -BeLike 'export:everyone:*' }; ($g.Name | Sort-Object) | Should -Be $g.Name; ($g | Measure-Object Count -Sum).Sum | Should -Be 240 }
            'Receive-FullStoryEvent/8'   = { param($r) $o = @($r.Output); $o.Count | Should -Be 3; $o[0].EventStart.ToString() | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$'; $o[0].EventStart.UtcDateTime.Date | Should -Be ([datetime]::UtcNow.Date.AddDays(-3)) }
            'Export-FullStoryEvent/1'    = { param($r) $o = @($r.Output); $o.Count | Should -Be 4; ($o | Measure-Object Rows -Sum).Sum | Should -Be 240; $o[0].GetType().Name | Should -Be 'LoadReport' }
            'Export-FullStoryEvent/2'    = { param($r) $o = @($r.Output); $o.Count | Should -BeGreaterThan 0; $o[0].Table | Should -Be 'clicks'; Test-Path (Join-Path $r.Dir 'clicks.db') | Should -BeTrue }
            'Export-FullStoryEvent/3'    = { param($r) @($r.Output).Count | Should -Be 0; Test-Path (Join-Path $r.Dir 'preview.db') | Should -BeFalse }
            'Export-FullStoryEvent/5'    = { param($r) $o = @($r.Output); ($o | Where-Object { $_ -is [IO.DirectoryInfo] }).Name | Should -Match '^event_date=\d{4}-\d\d-\d\d$'; (Invoke-LakeQuery (Join-Path $r.Dir 'lake') 'SELECT count(*) AS n FROM {events}')[0].n | Should -Be 240 }
            'Sync-FullStoryEvent/1'      = { param($r) $o = @($r.Output); $o.Count | Should -Be 2; $o.Outcome | Should -Be @('Succeeded', 'Succeeded'); $o[0].Rows | Should -Be 240; $o[1].Rows | Should -Be 0 }
            'Sync-FullStoryEvent/2'      = { param($r) $o = @($r.Output)[-1]; $o.Outcome | Should -Be 'Succeeded'; $o.Api | Should -Be 'SegmentExport'; $o.Batches | Should -BeGreaterThan 0; $o.Rows | Should -BeGreaterThan 0 }
            'Sync-FullStoryEvent/5'      = { param($r) $o = @($r.Output); $o.Count | Should -Be 3; $o[0].BatchKey | Should -Match '^export:everyone:\d{4}-\d\d-\d\dT00:00:00Z/'; $o[0].Rows | Should -Be 0 }
            'Get-FullStorySyncHistory/1' = { param($r) $o = @($r.Output); $o.Count | Should -Be 1; $o[0].Outcome | Should -Be 'Succeeded'; ($r.Output | Out-String) | Should -Match 'RunId\s+StartedAt\s+Outcome' }
            'Get-FullStorySyncHistory/2' = { param($r) @($r.Output)[-1].Rows | Should -Be 240; @($r.Streams | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Count | Should -Be 0 }
        }
        # What an example (by key) or the examples of a cmdlet assume already exists (in their folder).
        $script:Setup = @{
            'Get-FullStorySyncHistory'   = { Sync-FullStoryEvent -Path fullstory.db -WarningAction SilentlyContinue | Out-Null }
            # A failed run in the SQL Server history: FullStory answers 500 while it runs.
            'Get-FullStorySyncHistory/3' = {
                Invoke-Emulator $Emulator '/_emulator/faults' -Method Post -Body @(@{ Endpoint = 'list'; Kind = 'Status'; Status = 500; Times = 0 }) | Out-Null
                try { Sync-FullStoryEvent -ConnectionString $env:FULLSTORY_SQLSERVER_CONNECTION_STRING -Schema $HelpSchema -Table events -ErrorAction SilentlyContinue -WarningAction SilentlyContinue | Out-Null }
                catch { } # the failed run is what this setup is for
                finally { Invoke-Emulator $Emulator '/_emulator/faults' -Method Delete | Out-Null }
            }
        }

        # The SQL Server examples load into fullstory.events of the server at hand; here that schema is one of the test's
        # own (never a user's real fullstory schema), emptied before each example and dropped at the end.
        $script:HelpSchema = "fullstory_help_$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $script:ClearHelpSchema = {
            Invoke-SqlServerQuery @"
SET LOCK_TIMEOUT 60000;
IF OBJECT_ID(N'[$HelpSchema].[events]', N'U') IS NOT NULL DROP TABLE [$HelpSchema].[events];
IF OBJECT_ID(N'[$HelpSchema].[fullstory_sync_state]', N'U') IS NOT NULL DROP TABLE [$HelpSchema].[fullstory_sync_state];
IF OBJECT_ID(N'[$HelpSchema].[fullstory_sync_runs]', N'U') IS NOT NULL DROP TABLE [$HelpSchema].[fullstory_sync_runs];
"@ | Out-Null
        }
        if ($env:FULLSTORY_SQLSERVER_CONNECTION_STRING) {
            Invoke-DependencyCheck | Out-Null # loads Microsoft.Data.SqlClient for Invoke-SqlServerQuery
            Invoke-SqlServerQuery "EXEC(N'CREATE SCHEMA [$HelpSchema]');" | Out-Null
        }
        $Checks['Export-FullStoryEvent/4'] = { param($r)
            $o = @($r.Output); $o.Count | Should -Be 4; ($o | Measure-Object Rows -Sum).Sum | Should -Be 240; $o[0].Table | Should -Be "$HelpSchema.events"
            Invoke-SqlServerQuery "SELECT COUNT(*) FROM [$HelpSchema].[events];" | Should -Be 240 }
        $Checks['Sync-FullStoryEvent/4'] = { param($r)
            $o = @($r.Output)[-1]; $o.Outcome | Should -Be 'Succeeded'; $o.Batches | Should -Be 4; $o.Rows | Should -Be 240
            Invoke-SqlServerQuery "SELECT COUNT(*) FROM [$HelpSchema].[events];" | Should -Be 240
            @(Get-ChildItem (Join-Path $r.Dir 'raw') -Filter '*.json.gz').Count | Should -Be 4 }
        $Checks['Get-FullStorySyncHistory/3'] = { param($r)
            $o = @($r.Output); $o.Count | Should -Be 1; $o[0].Outcome | Should -Be 'Failed'; $o[0].Error | Should -Match '500'; $o[0].Table | Should -Be "$HelpSchema.events" }
    }
    AfterAll {
        if ($env:FULLSTORY_SQLSERVER_CONNECTION_STRING) { & $ClearHelpSchema; Invoke-SqlServerQuery "EXEC(N'DROP SCHEMA [$HelpSchema]');" | Out-Null }
        Stop-TestEmulator $Emulator
        Disconnect-FullStory
        $env:FULLSTORY_API_KEY = $SavedKey
        foreach ($k in 'BaseUri', 'PollInterval', 'RetryDelay') { $global:PSDefaultParameterValues.Remove("Connect-FullStory:$k") }
        Remove-Variable BaseUri -Scope Global -ErrorAction SilentlyContinue
    }

    It '<Key>: <Title>' -ForEach $Examples {
        if ($Skip) { Set-ItResult -Skipped -Because $Reason; return }
        $Checks.ContainsKey($Key) | Should -BeTrue -Because "every runnable example needs a check in Help.Tests.ps1 (or a reason it cannot run)"
        $dir = Join-Path ([IO.Path]::GetTempPath()) "fs-example-$([guid]::NewGuid())"
        New-Item -ItemType Directory $dir | Out-Null
        Push-Location $dir
        try {
            Connect-FullStory
            $run = $Code
            if ($Key -in $SqlServerExamples) {
                # The example as written, pointed at the test's server and schema, its archive folder in its own folder.
                & $ClearHelpSchema
                $run = $run -replace "(?m)^\`$cs = '[^']*'", '$cs = $env:FULLSTORY_SQLSERVER_CONNECTION_STRING'
                $run = $run -replace '-Schema fullstory\b', "-Schema $HelpSchema" -replace '-OutDirectory \\\\nas\\fullstory\\raw', '-OutDirectory raw'
                $run | Should -Not -Match 'sql01|\\\\nas' -Because 'the example must run against the test server'
            }
            if ($Setup.ContainsKey($Key)) { & $Setup[$Key] }
            elseif ($Setup.ContainsKey($Cmdlet)) { & $Setup[$Cmdlet] }
            $all = & ([scriptblock]::Create($run)) *>&1
            $errors = @($all | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
            $errors | Should -BeNullOrEmpty -Because "the example must run cleanly: $($errors | Out-String)"
            $isRecord = { $_ -is [System.Management.Automation.VerboseRecord] -or $_ -is [System.Management.Automation.WarningRecord] -or $_ -is [System.Management.Automation.InformationRecord] -or $_ -is [System.Management.Automation.DebugRecord] }
            $streams = @($all | Where-Object $isRecord)
            $output = @($all | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] -and -not (& $isRecord) })
            & $Checks[$Key] ([pscustomobject]@{ Output = $output; Streams = $streams; Dir = $dir })
        }
        finally {
            Pop-Location
            Remove-Item $dir -Recurse -Force -ErrorAction SilentlyContinue
        }
    }
}
