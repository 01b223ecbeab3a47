@{
    RootModule           = 'FullStory.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = 'a7f3c2d1-5b8e-4f6a-9c0d-2e1b3a4c5d6e'
    Author               = 'FullStory for PowerShell contributors'
    CompanyName          = 'FullStory for PowerShell'
    Copyright            = '(c) FullStory for PowerShell contributors. MIT licence.'
    Description          = 'Replicates FullStory raw event data (legacy bundle export and Segment Export APIs) into SQL Server, an embedded SQLite database, or any PowerShell pipeline: streaming, resilient, exactly once.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('FullStory.format.ps1xml')
    CmdletsToExport      = @(
        'Connect-FullStory'
        'Disconnect-FullStory'
        'Get-FullStorySession'
        'Get-FullStoryBundle'
        'Receive-FullStoryEvent'
        'Export-FullStoryEvent'
        'Sync-FullStoryEvent'
        'Get-FullStorySyncHistory'
    )
    AliasesToExport      = @(
        'Receive-FullStoryEvents'
        'Export-FullStoryEvents'
        'Sync-FullStoryEvents'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            # What the PowerShell Gallery shows and searches.
            Tags                     = @('FullStory', 'Analytics', 'ETL', 'Export', 'DataExport', 'SegmentExport', 'Sync', 'Replication', 'SqlServer', 'SQLite', 'DataEngineering', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            LicenseUri               = 'https://opensource.org/licenses/MIT'
            ProjectUri               = 'https://github.com/fullstory-powershell/FullStoryPS'
            RequireLicenseAcceptance = $false
            ReleaseNotes             = @'
0.1.0 - first release.
- Connect-FullStory: the API key as a SecureString, a plain string, a credential or $env:FULLSTORY_API_KEY; the region
  from the key's prefix (na1./eu1.); retries with backoff and Retry-After; the key never shown, logged or sent elsewhere.
- Get-FullStoryBundle and Receive-FullStoryEvent: the legacy bundle export and the Segment Export API, streamed as
  typed event objects with flat memory; raw downloads kept with -OutDirectory and replayed from files with -Path.
- Export-FullStoryEvent: into the embedded SQLite database or SQL Server (SqlBulkCopy), each batch exactly once.
- Sync-FullStoryEvent and Get-FullStorySyncHistory: an incremental scheduled sync whose database is its bookmark, with
  a run lock, a run history and an exit code a scheduler reports.
- -Start/-End take DateTime, DateTimeOffset, event timestamps and ISO 8601 strings; timestamps print as ISO 8601 UTC in
  every culture; errors carry FullStory.* ids and say what to fix.
- Help: Get-Help <command> -Full and Get-Help about_FullStory.
'@
        }
    }
}
