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
            Tags         = @('FullStory', 'Analytics', 'ETL', 'Export', 'SqlServer', 'SQLite', 'DataEngineering', 'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ProjectUri   = 'https://github.com/fullstory-powershell/FullStoryPS'
            ReleaseNotes = 'First release: Connect-FullStory sessions, bundle and Segment Export streaming, SQL Server and SQLite loading, scheduled sync.'
        }
    }
}
