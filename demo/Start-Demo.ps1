#Requires -Version 7.4
<#
.SYNOPSIS
    The main job, end to end: a scheduled-style sync from the local FullStory emulator into an embedded SQLite database.
.DESCRIPTION
    Run by `build.ps1 -Task Demo` after packaging. Starts the emulator as a process (7 generated day-long bundles of 2,000
    events plus the real 144-event sample from FullStory's demo shop), connects to it, runs Sync-FullStoryEvents twice
    (the second run finds nothing new), shows the run history, then what landed: counts by event type and one session's
    timeline (the user's clicks and changes, in order, with page URLs and target text), as in Stitch's example.

    How the data is read back: the engine lives in the module's private AssemblyLoadContext, so its types are not usable by
    name from a script; the demo queries the database with the Microsoft.Data.Sqlite the module loaded (reached by reflection):
    counts by event type and one session's timeline in SQL, cross-checked against the raw downloads kept with -OutDirectory
    (read back with Receive-FullStoryEvent -Path) and the row totals of the run history.
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

# Reads rows from the SQLite file with the Microsoft.Data.Sqlite that the module itself loaded (it lives in the module's
# private load context, so it is reached by reflection, not by type name): no sqlite3 tool needed.
function Invoke-DemoQuery([string] $Path, [string] $Query) {
    $sqlite = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -First 1
    $connection = [Activator]::CreateInstance($sqlite.GetType('Microsoft.Data.Sqlite.SqliteConnection', $true), @("Data Source=$Path;Mode=ReadOnly"))
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = $Query
        $reader = $command.ExecuteReader()
        while ($reader.Read()) { , @(for ($i = 0; $i -lt $reader.FieldCount; $i++) { $reader.GetValue($i) }) }
        $reader.Dispose()
    }
    finally { $connection.Dispose() }
}

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

    Write-Host 'The same counts from the database itself:'
    $fromDb = Invoke-DemoQuery $db 'SELECT EventType, count(*) FROM events GROUP BY EventType ORDER BY 2 DESC, 1;'
    $fromDb | ForEach-Object { Write-Host ("  {0,-14} {1,6}" -f $_[0], $_[1]) }
    $dbCounts = @{}; foreach ($row in $fromDb) { $dbCounts[[string]$row[0]] = [long]$row[1] }
    $same = @($byType | Where-Object { $dbCounts[$_.EventType] -ne $_.Count }).Count -eq 0 -and $dbCounts.Count -eq @($byType).Count
    Assert-That $same 'the database has exactly the archived events, type by type'

    Write-Section "One session's timeline: the user's clicks and changes, in order"
    # Straight from the events table, as an analyst would query it. A web session (mobile app events have a view name
    # instead of a page URL). Ids come from the database as numbers, so they are safe to put in the SQL.
    $top = @(Invoke-DemoQuery $db ("SELECT UserId, SessionId, max(UserDisplayName), count(*) FROM events " +
        "WHERE EventType IN ('click', 'change') AND EventTargetText <> '' AND PageUrl <> '' GROUP BY UserId, SessionId ORDER BY 4 DESC, 1, 2 LIMIT 1;"))
    Assert-That ($top.Count -eq 1) 'a session with clicks and changes was found'
    $userId, $sessionId, $name, $count = [long]$top[0][0], [long]$top[0][1], [string]$top[0][2], [long]$top[0][3]
    $who = if ($name) { "$name (user $userId)" } else { "User $userId" }
    Write-Host "$who, session ${sessionId}: $count clicks and changes"
    $timeline = "SELECT EventStart, EventType, PageUrl, EventTargetText FROM events WHERE UserId = $userId AND SessionId = $sessionId " +
        "AND EventType IN ('click', 'change') AND EventTargetText <> '' ORDER BY EventStart LIMIT 15;"
    Write-Host $timeline
    Invoke-DemoQuery $db $timeline |
        ForEach-Object { [pscustomobject]@{ EventStart = $_[0]; EventType = $_[1]; PageUrl = $_[2]; EventTargetText = $(if ($_[3].Length -gt 40) { $_[3].Substring(0, 40) + '…' } else { $_[3] }) } } |
        Format-Table -AutoSize | Show

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
