#Requires -Version 7.4
<#
.SYNOPSIS
    One scheduled FullStory sync: connect, Sync-FullStoryEvents, exit 0 on success (or when another run is still going),
    non-zero on failure. Meant for Windows Task Scheduler or cron (see docs/scheduling.md).
.DESCRIPTION
    The API key comes from SecretManagement (-SecretName, Get-Secret returns a SecureString that Connect-FullStory takes
    as is) or from the FULLSTORY_API_KEY environment variable. Nothing prompts: it runs under pwsh -NonInteractive.
    The destination database is the bookmark: every run continues where the last one stopped, exactly once.
.EXAMPLE
    pwsh -NoProfile -NonInteractive -File Invoke-FullStorySync.ps1 -DatabasePath /var/lib/fullstory/fullstory.db
.EXAMPLE
    pwsh -NoProfile -NonInteractive -File Invoke-FullStorySync.ps1 -SecretName FullStoryApiKey -ConnectionString 'Server=sql01;Database=analytics;Integrated Security=true;TrustServerCertificate=true'
#>
[CmdletBinding(DefaultParameterSetName = 'Sqlite')]
param(
    # The embedded SQLite database (created on the first run).
    [Parameter(ParameterSetName = 'Sqlite')]
    [string] $DatabasePath = (Join-Path $HOME 'fullstory/fullstory.db'),

    # Load into SQL Server instead.
    [Parameter(Mandatory, ParameterSetName = 'SqlServer')]
    [string] $ConnectionString,

    [string] $Table = 'events',

    # A SecretManagement secret that holds the API key; without it, $env:FULLSTORY_API_KEY is used.
    [string] $SecretName,

    [ValidateSet('Bundles', 'SegmentExport')]
    [string] $Api = 'Bundles',

    # Where the first run starts (default: one year ago). Ignored once the database holds data.
    [datetime] $Start,

    # Wait this long for a previous run that is still going, then end as Skipped (exit 0).
    [timespan] $LockWait = (New-TimeSpan -Minutes 5),

    # Keep the raw downloads here too (optional).
    [string] $OutDirectory,

    # Import the module from here instead of $env:PSModulePath (e.g. C:\FullStory\FullStory\FullStory.psd1).
    [string] $ModulePath = 'FullStory',

    # Send requests through this base URI instead of FullStory's hosts (an https proxy; the tests' local emulator).
    [uri] $BaseUri
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'   # no progress bars in a log file

# The log's times as the module prints them, in any culture: ISO 8601 UTC (2026-11-29T00:00:00.000Z); a lag as 1d 3h 49m.
function Format-Utc([datetimeoffset] $Time) { $Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", [cultureinfo]::InvariantCulture) }
function Format-Lag([timespan] $Lag) { '{0}d {1}h {2}m' -f [math]::Floor($Lag.TotalDays), $Lag.Hours, $Lag.Minutes }

try {
    Import-Module $ModulePath

    $connect = @{}
    if ($BaseUri) { $connect.BaseUri = $BaseUri }
    if ($SecretName) {
        Import-Module Microsoft.PowerShell.SecretManagement
        Connect-FullStory -ApiKey (Get-Secret -Name $SecretName) @connect  # a SecureString; never written anywhere
    }
    elseif ($env:FULLSTORY_API_KEY) {
        Connect-FullStory @connect                                         # reads $env:FULLSTORY_API_KEY
    }
    else {
        throw 'No FullStory API key: pass -SecretName (SecretManagement) or set FULLSTORY_API_KEY for the account that runs the task.'
    }

    $sync = @{ Api = $Api; Table = $Table; LockWait = $LockWait }
    if ($PSCmdlet.ParameterSetName -eq 'SqlServer') { $sync.ConnectionString = $ConnectionString }
    else {
        New-Item -ItemType Directory -Force -Path (Split-Path $DatabasePath -Parent) | Out-Null
        $sync.Path = $DatabasePath
    }
    if ($PSBoundParameters.ContainsKey('Start')) { $sync.Start = $Start }
    if ($OutDirectory) { $sync.OutDirectory = $OutDirectory }

    # -OutVariable keeps the summary even when the run fails (the cmdlet writes it, then a terminating error).
    Sync-FullStoryEvents @sync -OutVariable summary | Out-Null
    $s = $summary[0]
    $dataThrough = if ($s.DataThrough) { Format-Utc $s.DataThrough } else { '(nothing yet)' }
    Write-Output ("{0} run {1}: {2}, {3} batches, {4:N0} rows, {5} retries; data through {6}, up to date: {7}" -f
        (Format-Utc ([datetimeoffset]::UtcNow)), $(if ($null -ne $s.RunId) { $s.RunId } else { '(not numbered yet)' }), $s.Outcome, $s.Batches, $s.Rows, $s.Retries, $dataThrough, $s.IsUpToDate)
    if ($s.Outcome -eq 'Succeeded' -and -not $s.IsUpToDate -and $s.Lag) {
        Write-Warning "The data is $(Format-Lag $s.Lag) behind: FullStory may not have published newer data yet, or earlier runs failed (Get-FullStorySyncHistory)."
    }
    exit 0
}
catch {
    $s = if (Get-Variable summary -ErrorAction Ignore) { $summary | Select-Object -First 1 } else { $null }
    if ($s) { Write-Output ("{0} run {1}: {2} after {3} batches, {4:N0} rows" -f (Format-Utc ([datetimeoffset]::UtcNow)), $s.RunId, $s.Outcome, $s.Batches, $s.Rows) }
    Write-Output "FullStory sync failed: $($_.Exception.Message)"
    [Console]::Error.WriteLine("FullStory sync failed: $($_.Exception.Message)")
    exit 1
}
