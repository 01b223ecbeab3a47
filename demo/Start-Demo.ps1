#Requires -Version 7.4
<#
.SYNOPSIS
    The main job, end to end: a scheduled-style sync from the local FullStory emulator into an embedded SQLite database.
.DESCRIPTION
    Run by `build.ps1 -Task Demo` after packaging. Starts the emulator as a process (7 generated day-long bundles of 2,000
    events plus the real 144-event sample from FullStory's demo shop), connects to it, runs Sync-FullStoryEvents twice
    (the second run finds nothing new), shows the run history, then what landed: counts by event type and one session's
    timeline (the user's clicks and changes, in order, with page URLs and target text), as in Stitch's example.

    How the data is read back: the engine lives in the module's private AssemblyLoadContext, so its SQLite types are not
    usable from the script. The demo reads the raw downloads the sync kept with -OutDirectory (Receive-FullStoryEvent -Path),
    and checks them against the database: the per-type row counts from the database itself when the sqlite3 command-line
    tool is installed, and in every case the row totals the run history records.
    Exits 0 on success, non-zero on any failure.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [ValidateSet('Debug', 'Release')] [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version Latest

$root = Split-Path $PSScriptRoot -Parent
$demoDir = Join-Path $root 'out/demo'
$db = Join-Path $demoDir 'fullstory.db'
$raw = Join-Path $demoDir 'raw'
$emulatorDll = Join-Path $root "tests/FullStory.Emulator/bin/$Configuration/net10.0/FullStory.Emulator.dll"
$sample = Join-Path $root 'tests/data/samples/bundle-legacy-fields.json'

function Assert-That([bool] $Condition, [string] $Message) {
    if (-not $Condition) { throw "Check failed: $Message" }
    Write-Host "  ok: $Message"
}

# Formatted output at a fixed width: under a redirected stdout (build.ps1, CI) pwsh would wrap tables at 80 columns.
function Show { $input | Out-String -Width 220 | ForEach-Object TrimEnd | Write-Host }

function Write-Section([string] $Title) { Write-Host ''; Write-Host "== $Title ==" }

$emulator = $null
$exitCode = 1
try {
    if (-not (Test-Path $emulatorDll)) { throw "The emulator is not built: $emulatorDll (run build.ps1 -Task Demo)." }
    New-Item -ItemType Directory -Force -Path $demoDir | Out-Null
    # A fresh database: remove it with its WAL files, the run lock file and the raw archive.
    Get-ChildItem $demoDir -Filter 'fullstory.db*' | Remove-Item -Force
    if (Test-Path $raw) { Remove-Item $raw -Recurse -Force }

    Write-Section 'Starting the FullStory emulator'
    $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in @($emulatorDll, '--bundles', '7', '--events-per-bundle', '2000', '--sample-bundle', $sample, '--no-stdin')) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.UseShellExecute = $false
    $emulator = [System.Diagnostics.Process]::Start($psi)
    $lineTask = $emulator.StandardOutput.ReadLineAsync()
    if (-not $lineTask.Wait([TimeSpan]::FromSeconds(60)) -or $null -eq $lineTask.Result) { throw 'The emulator did not say where it listens within 60 s.' }
    $info = $lineTask.Result | ConvertFrom-Json
    Write-Host "Emulator listening at $($info.baseUri) (pid $($emulator.Id))"
    $dataset = Invoke-RestMethod -Uri ([Uri]::new([Uri]$info.baseUri, '_emulator/dataset'))
    $expectedRows = ($dataset.bundles | Measure-Object EventCount -Sum).Sum
    Write-Host "FullStory has $(@($dataset.bundles).Count) bundles, $expectedRows events."

    Import-Module $ModulePath -Force
    Connect-FullStory -ApiKey $info.apiKey -BaseUri $info.baseUri -RetryDelay '00:00:00.200' | Out-Null

    Write-Section 'First run: Sync-FullStoryEvents -Path out/demo/fullstory.db -Start 2020-01-01 -OutDirectory out/demo/raw'
    # -Start reaches back to the real sample (August 2020); without it the first run starts one year ago.
    $first = Sync-FullStoryEvents -Path $db -Start '2020-01-01' -OutDirectory $raw
    $first | Format-List RunId, Outcome, Batches, Rows, Bytes, Retries, DataThrough, Lag, IsUpToDate, Destination, Error | Show
    Assert-That ($first.Outcome -eq 'Succeeded') 'the first run succeeded'
    Assert-That ($first.Batches -eq @($dataset.bundles).Count) "the first run loaded all $(@($dataset.bundles).Count) bundles"
    Assert-That ($first.Rows -eq $expectedRows) "the first run loaded $expectedRows rows, one per event"
    Assert-That ($first.IsUpToDate) 'the data is up to date (about a day old)'

    Write-Section 'Second run (what the scheduled task does every 30 minutes): nothing new'
    $second = Sync-FullStoryEvents -Path $db -Start '2020-01-01' -OutDirectory $raw
    $second | Format-List RunId, Outcome, Batches, Rows, DataThrough, IsUpToDate, Message | Show
    Assert-That ($second.Outcome -eq 'Succeeded' -and $second.Batches -eq 0 -and $second.Rows -eq 0) 'the second run loaded nothing twice'

    Write-Section 'Run history: Get-FullStorySyncHistory -Path out/demo/fullstory.db'
    $history = @(Get-FullStorySyncHistory -Path $db)
    $history | Format-Table RunId, StartedAt, Outcome, Api, Table, Batches, Rows, Bytes, Retries, DataThrough -AutoSize | Show
    Assert-That ($history.Count -eq 2) 'two runs recorded, newest first'
    Assert-That ((($history | Measure-Object Rows -Sum).Sum) -eq $expectedRows) 'the history accounts for every row exactly once'

    Write-Section 'What landed, by event type (read back from the raw downloads kept with -OutDirectory)'
    $events = @(Receive-FullStoryEvent -Path (Join-Path $raw '*.json*'))
    Assert-That ($events.Count -eq $expectedRows) "the archive holds the $expectedRows events loaded"
    $byType = $events | Group-Object EventType | Sort-Object Count -Descending | Select-Object @{ n = 'EventType'; e = { $_.Name } }, Count
    $byType | Format-Table -AutoSize | Show

    $sqlite3 = Get-Command sqlite3 -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($sqlite3) {
        Write-Host 'The same counts from the database itself (sqlite3):'
        $fromDb = & $sqlite3.Source -separator '|' $db 'SELECT EventType, count(*) FROM events GROUP BY EventType ORDER BY 2 DESC, 1;'
        if ($LASTEXITCODE -ne 0) { throw "sqlite3 exited with code $LASTEXITCODE" }
        $fromDb | ForEach-Object { Write-Host "  $_" }
        $dbCounts = @{}; foreach ($line in $fromDb) { $t, $n = $line -split '\|'; $dbCounts[$t] = [long]$n }
        $same = @($byType | Where-Object { $dbCounts[$_.EventType] -ne $_.Count }).Count -eq 0 -and $dbCounts.Count -eq @($byType).Count
        Assert-That $same 'the database has exactly the archived events, type by type'
    }
    else {
        Write-Host '(sqlite3 is not installed: the per-type counts were not read from the database; the totals above were.)'
    }

    Write-Section "One session's timeline: the user's clicks and changes, in order"
    # A web session (mobile app events have a view name instead of a page URL).
    $interactions = $events | Where-Object { $_.EventType -in 'click', 'change' -and $_.EventTargetText -and $_.PageUrl }
    $session = $interactions | Group-Object UserId, SessionId | Sort-Object Count -Descending | Select-Object -First 1
    $first1 = $session.Group[0]
    $who = if ($first1.UserDisplayName) { "$($first1.UserDisplayName) (user $($first1.UserId))" } else { "User $($first1.UserId)" }
    Write-Host "$who, session $($first1.SessionId): $($session.Count) clicks and changes"
    $session.Group | Sort-Object { $_.EventStart.Value } | Select-Object -First 15 |
        Format-Table @{ n = 'EventStart'; e = { $_.EventStart } }, EventType, @{ n = 'PageUrl'; e = { $_.PageUrl } },
            @{ n = 'EventTargetText'; e = { $t = $_.EventTargetText; if ($t.Length -gt 40) { $t.Substring(0, 40) + '…' } else { $t } } } -AutoSize |
        Show
    Assert-That ($session.Count -gt 0) 'a session with clicks and changes was found'

    Write-Host ''
    Write-Host 'Demo finished: every event loaded exactly once; a second run loaded nothing new.'
    $exitCode = 0
}
catch {
    Write-Host "DEMO FAILED: $($_.Exception.Message)"
    if ($_.ScriptStackTrace) { Write-Host $_.ScriptStackTrace }
    $exitCode = 1
}
finally {
    if ($emulator -and -not $emulator.HasExited) {
        $emulator.Kill($true)
        $emulator.WaitForExit(10000) | Out-Null
    }
    if ($emulator) { $emulator.Dispose() }
}
exit $exitCode
