# Time parameters bind as PowerShell users expect, and mean the same instant in every culture: DateTime, DateTimeOffset,
# the events' own timestamps and ISO 8601 strings (no offset = UTC); strings in a culture's own order are refused.
# Each culture runs in a fresh pwsh whose culture is set before the module loads, as a user's session would be.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    # Three daily bundles from 2026-01-01; Segment Export windows of them carry their UTC range in each event's Source.
    $script:Emulator = Start-TestEmulator -Arguments @('--bundles', '3', '--events-per-bundle', '480', '--first-bundle-start', '2026-01-01', '--pending-polls', '0')

    # Binds each value to Receive-FullStoryEvent -Start (with -End two hours later) and Get-FullStoryBundle -Start in a
    # fresh pwsh under $Culture; returns, per value, the export window the module asked for (from the events' Source),
    # the first bundle listed, or the error.
    $script:Bind = {
        param([string] $Culture)
        $script = @"
`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'
[cultureinfo]::CurrentCulture = '$Culture'
Import-Module '$ModulePath'
Connect-FullStory -ApiKey '$($Emulator.ApiKey)' -BaseUri '$($Emulator.BaseUri)' -RetryDelay 00:00:00.05 -PollInterval 00:00:00.05
`$event = Receive-FullStoryEvent -Start '2026-01-02T00:00:00Z' -End '2026-01-03T00:00:00Z' | Where-Object { `$_.EventStart.UtcDateTime.Hour -eq 10 } | Select-Object -First 1
`$values = [ordered]@{
    datetimeoffset = [datetimeoffset]'2026-01-02T12:00:00+02:00'
    eventTimestamp = `$event.EventStart
    isoNoOffset    = '2026-01-02T10:00'
    isoSpace       = '2026-01-02 10:00:00'
    isoOffset      = '2026-01-02T11:00:00+01:00'
    isoZulu        = '2026-01-02T10:00:00.000Z'
    dateOnly       = '2026-01-02'
    datetimeNoKind = [datetime]::new(2026, 1, 2, 10, 0, 0)
    datetimeUtc    = [datetime]::new(2026, 1, 2, 10, 0, 0, [DateTimeKind]::Utc)
    cultureDate    = '01.02.2026'
    usDate         = '01/02/2026'
    invalidDate    = '2026-02-30'
}
`$out = [ordered]@{ eventStart = `$event.EventStart.ToString() }
foreach (`$name in `$values.Keys) {
    `$v = `$values[`$name]
    try {
        `$start = Receive-FullStoryEvent -Start `$v -End ([datetimeoffset]'2026-01-02T23:59:59Z') | Select-Object -First 1
        `$bundle = Get-FullStoryBundle -Start `$v -WarningAction SilentlyContinue | Select-Object -First 1
        `$out[`$name] = [ordered]@{ Source = `$start.Source; Bundle = `$bundle.Start.ToString() }
    }
    catch { `$out[`$name] = [ordered]@{ ErrorId = `$_.FullyQualifiedErrorId; Message = `$_.Exception.Message } }
}
`$out.culture = [cultureinfo]::CurrentCulture.Name
'RESULT ' + (`$out | ConvertTo-Json -Compress -Depth 4)
"@
        # One script file run as one command: the culture set at its top holds for every line of it.
        $file = Join-Path ([IO.Path]::GetTempPath()) "fs-bind-$Culture-$([guid]::NewGuid().ToString('N').Substring(0, 8)).ps1"
        Set-Content -Path $file -Value $script
        try { $r = Invoke-FreshPwsh -Script "& '$file'" } finally { Remove-Item $file -ErrorAction SilentlyContinue }
        $line = $r.Output -split "`n" | Where-Object { $_ -like 'RESULT *' } | Select-Object -Last 1
        if (-not $line) { throw "No result under $Culture`: $($r.Errors) $($r.Output)" }
        $line.Substring(7) | ConvertFrom-Json -DateKind String
    }
}
AfterAll { Stop-TestEmulator $Emulator }

Describe 'Time parameters under <_>' -ForEach 'en-US', 'de-DE' {
    BeforeAll { $script:R = & $Bind $_ }

    It 'ran under that culture' { $R.culture | Should -Be $_ }
    It 'a DateTimeOffset binds as its instant (12:00+02:00 is 10:00 UTC)' {
        $R.datetimeoffset.Source | Should -Be 'export:everyone:2026-01-02T10:00:00Z/2026-01-02T23:59:59Z'
        $R.datetimeoffset.Bundle | Should -Be '2026-01-02T00:00:00.000Z'
    }
    It "an event's own EventStart binds (-Start `$event.EventStart)" {
        $R.eventStart | Should -Match '^2026-01-02T10:'
        $R.eventTimestamp.Source | Should -Be ("export:everyone:{0}Z/2026-01-02T23:59:59Z" -f $R.eventStart.Substring(0, 19))
    }
    It 'ISO 8601 strings without an offset are UTC, with an offset are converted' {
        foreach ($name in 'isoNoOffset', 'isoSpace', 'isoOffset', 'isoZulu') {
            $R.$name.Source | Should -Be 'export:everyone:2026-01-02T10:00:00Z/2026-01-02T23:59:59Z' -Because $name
        }
        $R.dateOnly.Source | Should -Be 'export:everyone:2026-01-02T00:00:00Z/2026-01-02T23:59:59Z'
    }
    It 'a DateTime without a kind is UTC, as one of kind Utc' {
        $R.datetimeNoKind.Source | Should -Be 'export:everyone:2026-01-02T10:00:00Z/2026-01-02T23:59:59Z'
        $R.datetimeUtc.Source | Should -Be 'export:everyone:2026-01-02T10:00:00Z/2026-01-02T23:59:59Z'
    }
    It "refuses a date in a culture's own order ('01.02.2026', '01/02/2026') instead of guessing, and names the ISO form" {
        foreach ($name in 'cultureDate', 'usDate') {
            $R.$name.ErrorId | Should -BeLike 'ParameterArgumentTransformationError,*' -Because $name
            $R.$name.Message | Should -Match 'not an ISO 8601 date'
            $R.$name.Message | Should -Match "2026-02-01"
        }
    }
    It 'refuses an impossible date' {
        $R.invalidDate.ErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $R.invalidDate.Message | Should -Match 'not a valid date'
    }
}

Describe 'Sync-FullStoryEvent -Start' {
    BeforeAll {
        Import-Module $ModulePath -Force
        Connect-FullStory -ApiKey $Emulator.ApiKey -BaseUri $Emulator.BaseUri -RetryDelay 00:00:00.05 -PollInterval 00:00:00.05
        $script:Dir = Join-Path ([IO.Path]::GetTempPath()) "fs-time-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        New-Item -ItemType Directory $Dir | Out-Null
    }
    AfterAll { Disconnect-FullStory; Remove-Item $Dir -Recurse -Force -ErrorAction SilentlyContinue }

    It 'takes a DateTimeOffset: the first window starts at its UTC instant' {
        $db = Join-Path $Dir 'windows.db'
        $s = Sync-FullStoryEvent -Path $db -Api SegmentExport -Start ([datetimeoffset]'2026-01-02T02:00:00+02:00') -WindowSize (New-TimeSpan -Days 100)
        $s.Outcome | Should -Be 'Succeeded'
        $s.Loaded[0].BatchKey | Should -Be 'export:everyone:2026-01-02T00:00:00Z/2026-04-12T00:00:00Z'
    }
    It 'refuses a -Start in the future instead of reporting "Nothing new" on every run, and creates nothing' {
        $db = Join-Path $Dir 'future.db'
        $err = $null
        try { Sync-FullStoryEvent -Path $db -Start '2099-01-01' -WarningAction SilentlyContinue } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidArgument,*'
        $err.Exception.Message | Should -Match '-Start 2099-01-01T00:00:00\.000Z is in the future'
        $err.ErrorDetails.RecommendedAction | Should -Match 'in the past'
        Test-Path $db | Should -BeFalse
    }
}
