# The module's root. The cmdlets in FullStory.PowerShell.dll take and return types from FullStory.Engine, which lives
# with SqlClient, SQLite and Polly in dependencies/ and loads into the module's private AssemblyLoadContext. PowerShell
# inspects those types while importing the cmdlets, so the load context must be in place first: hence this script.
$cmdletAssembly = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot 'FullStory.PowerShell.dll'))
$cmdletAssembly.GetType('FullStory.PowerShell.Infrastructure.ModuleInitializer', $true)::Register()
Import-Module (Join-Path $PSScriptRoot 'FullStory.PowerShell.dll')

$ExecutionContext.SessionState.Module.OnRemove = {
    $cmdletAssembly.GetType('FullStory.PowerShell.Infrastructure.ModuleInitializer', $true)::Unregister()
}.GetNewClosure()
