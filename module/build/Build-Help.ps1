#Requires -Version 7.4
<#
.SYNOPSIS
    Compiles the module's markdown help (docs/help) into the help files PowerShell reads.
.DESCRIPTION
    docs/help/<Cmdlet-Name>.md (one per cmdlet, platyPS-like layout) becomes en-US/FullStory.PowerShell.dll-Help.xml
    (MAML, beside the assembly that defines the cmdlets) and docs/help/about_*.md becomes en-US/about_*.help.txt.

    Syntax, parameter types, positions, pipeline input, aliases and wildcard support come from the built module itself
    (Get-Command in a child pwsh process, so this process never loads the assembly); the markdown supplies the words.
    The build fails when the two disagree: a cmdlet without a markdown file, a parameter without a description, or a
    described parameter the cmdlet does not have. Help cannot drift from the code.

    Markdown layout per cmdlet (headings are exact):
      # Verb-Noun
      ## SYNOPSIS            one paragraph
      ## SYNTAX              optional, ignored (generated from the code)
      ## DESCRIPTION         paragraphs
      ## EXAMPLES            ### Example N: title, a ```powershell block, then remarks paragraphs
      ## PARAMETERS          ### -Name, then its description (a ```yaml block, if any, is ignored)
      ## INPUTS / ## OUTPUTS ### TypeName, then its description
      ## NOTES               paragraphs
      ## RELATED LINKS       - [text](uri) or - text
.EXAMPLE
    ./module/build/Build-Help.ps1 -SourceDirectory docs/help -ModuleDirectory out/FullStory
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $SourceDirectory,
    [Parameter(Mandatory)] [string] $ModuleDirectory,
    [string] $Culture = 'en-US',
    [string] $AssemblyName = 'FullStory.PowerShell.dll'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$SourceDirectory = (Resolve-Path $SourceDirectory).Path
$ModuleDirectory = (Resolve-Path $ModuleDirectory).Path
$manifest = Get-ChildItem $ModuleDirectory -Filter '*.psd1' | Select-Object -First 1
if (-not $manifest) { throw "Build-Help: no module manifest in $ModuleDirectory." }

#region The commands, as the built module defines them (in a child process: this one must not load the assembly)
$discover = @'
param($Manifest)
$ErrorActionPreference = 'Stop'
$module = Import-Module $Manifest -PassThru
$common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
$commands = foreach ($c in Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name) {
    [ordered]@{
        Name = $c.Name; Verb = $c.Verb; Noun = $c.Noun
        OutputType = @($c.OutputType | ForEach-Object Name)
        Parameters = @(foreach ($p in $c.Parameters.Values | Where-Object Name -NotIn $common) {
            [ordered]@{
                Name = $p.Name; Type = $p.ParameterType.Name; FullType = $p.ParameterType.FullName
                IsSwitch = $p.SwitchParameter; Aliases = @($p.Aliases)
                Globbing = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
            } })
        ShouldProcess = $c.Parameters.ContainsKey('WhatIf')
        Sets = @(foreach ($s in $c.ParameterSets) {
            [ordered]@{
                Name = $s.Name; IsDefault = $s.IsDefault
                Parameters = @(foreach ($p in $s.Parameters | Where-Object Name -NotIn $common) {
                    [ordered]@{
                        Name = $p.Name; Mandatory = $p.IsMandatory; Position = $p.Position
                        ByValue = $p.ValueFromPipeline; ByPropertyName = $p.ValueFromPipelineByPropertyName
                    } })
            } })
    }
}
ConvertTo-Json -InputObject @($commands) -Depth 8 -Compress
'@
$exe = [Environment]::ProcessPath
$pwshArgs = @()
if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { $pwshArgs += Join-Path $PSHOME 'pwsh.dll' }
$scriptFile = Join-Path ([IO.Path]::GetTempPath()) "fullstory-help-discover-$PID.ps1"
Set-Content -LiteralPath $scriptFile -Value $discover
try { $json = & $exe @pwshArgs -NoProfile -NonInteractive -File $scriptFile -Manifest $manifest.FullName }
finally { Remove-Item -LiteralPath $scriptFile -ErrorAction SilentlyContinue }
if ($LASTEXITCODE -ne 0) { throw "Build-Help: could not import $($manifest.FullName) to read its commands: $json" }
$commands = @(($json -join "`n") | ConvertFrom-Json)
if ($commands.Count -eq 0) { throw "Build-Help: the module exports no cmdlets." }
#endregion

#region Markdown
# Splits markdown into sections by heading level: returns ordered @{ heading = body lines }.
function Split-Section([string[]] $Lines, [int] $Level) {
    $prefix = ('#' * $Level) + ' '
    $sections = [ordered]@{}
    $current = $null
    $inCode = $false
    foreach ($line in $Lines) {
        if ($line -match '^```') { $inCode = -not $inCode }
        if (-not $inCode -and $line.StartsWith($prefix)) {
            $current = $line.Substring($prefix.Length).Trim()
            $sections[$current] = [System.Collections.Generic.List[string]]::new()
        }
        elseif ($null -ne $current) { $sections[$current].Add($line) }
    }
    $sections
}

# Paragraphs of plain text (blank-line separated; lines of a paragraph joined; list items and fenced code kept as lines).
function Get-Paragraph([string[]] $Lines) {
    $paras = [System.Collections.Generic.List[string]]::new()
    $buffer = [System.Collections.Generic.List[string]]::new()
    $inCode = $false
    $flush = { if ($buffer.Count) { $paras.Add(($buffer -join ' ').Trim()); $buffer.Clear() } }
    foreach ($line in $Lines) {
        if ($line -match '^```') { & $flush; $inCode = -not $inCode; continue }
        if ($inCode) { $paras.Add('    ' + $line); continue }
        if ($line.Trim() -eq '') { & $flush; continue }
        if ($line -match '^\s*([-*]|\d+\.)\s') { & $flush }
        $buffer.Add($line.Trim())
    }
    & $flush
    @($paras | ForEach-Object { $_ -replace '\*\*', '' })
}

# The body of a section without a ```yaml block (platyPS puts parameter metadata there; ours comes from the code).
function Remove-Yaml([string[]] $Lines) {
    $out = [System.Collections.Generic.List[string]]::new()
    $skip = $false
    foreach ($l in $Lines) {
        if ($l -match '^```yaml') { $skip = $true; continue }
        if ($skip -and $l -match '^```') { $skip = $false; continue }
        if (-not $skip) { $out.Add($l) }
    }
    , $out.ToArray()
}

function Read-CommandHelp([string] $Path) {
    $lines = @(Get-Content -LiteralPath $Path)
    # Skip platyPS front matter.
    if ($lines.Count -and $lines[0] -eq '---') { $end = [array]::IndexOf($lines, '---', 1); $lines = $lines[($end + 1)..($lines.Count - 1)] }
    $top = Split-Section $lines 1
    if ($top.Count -ne 1) { throw "Build-Help: $Path must have exactly one '# <Cmdlet-Name>' heading." }
    $name = @($top.Keys)[0]
    $s = Split-Section $top[$name] 2
    foreach ($required in 'SYNOPSIS', 'DESCRIPTION', 'EXAMPLES', 'PARAMETERS', 'INPUTS', 'OUTPUTS', 'RELATED LINKS') {
        if (-not $s.Contains($required)) { throw "Build-Help: $Path has no '## $required' section." }
    }
    $help = [ordered]@{
        Name = $name
        Synopsis = (Get-Paragraph $s['SYNOPSIS']) -join ' '
        Description = Get-Paragraph $s['DESCRIPTION']
        Notes = if ($s.Contains('NOTES')) { Get-Paragraph $s['NOTES'] } else { @() }
        Examples = [System.Collections.Generic.List[object]]::new()
        Parameters = [ordered]@{}
        Inputs = [System.Collections.Generic.List[object]]::new()
        Outputs = [System.Collections.Generic.List[object]]::new()
        Links = [System.Collections.Generic.List[object]]::new()
    }
    if (-not $help.Synopsis) { throw "Build-Help: $Path has an empty SYNOPSIS." }
    if (-not $help.Description) { throw "Build-Help: $Path has an empty DESCRIPTION." }

    $examples = Split-Section $s['EXAMPLES'] 3
    foreach ($title in $examples.Keys) {
        $body = $examples[$title]
        $start = $body.FindIndex({ param($l) $l -match '^```(powershell|ps1|pwsh)?\s*$' })
        if ($start -lt 0) { throw "Build-Help: ${Path}: example '$title' has no ```powershell code block." }
        $end = $body.FindIndex($start + 1, { param($l) $l -match '^```\s*$' })
        if ($end -lt 0) { throw "Build-Help: ${Path}: example '$title' has an unterminated code block." }
        $code = ($body.GetRange($start + 1, $end - $start - 1) -join "`n").Trim()
        $remarks = Get-Paragraph $body.GetRange($end + 1, $body.Count - $end - 1).ToArray()
        $help.Examples.Add([pscustomobject]@{ Title = $title; Code = $code; Remarks = $remarks })
    }
    $params = Split-Section $s['PARAMETERS'] 3
    foreach ($p in $params.Keys) {
        if ($p -eq 'CommonParameters') { continue }
        if ($p -notmatch '^-(\w+)$') { throw "Build-Help: ${Path}: parameter heading '### $p' must be '### -Name'." }
        $help.Parameters[$Matches[1]] = Get-Paragraph (Remove-Yaml $params[$p])
    }
    foreach ($kind in 'INPUTS', 'OUTPUTS') {
        $types = Split-Section $s[$kind] 3
        if ($types.Count -eq 0) { throw "Build-Help: ${Path}: ## $kind needs at least one '### TypeName' (None when nothing)." }
        foreach ($t in $types.Keys) { $help[$kind.Substring(0, 1) + $kind.Substring(1).ToLower()].Add([pscustomobject]@{ Type = $t; Description = Get-Paragraph $types[$t] }) }
    }
    foreach ($l in $s['RELATED LINKS']) {
        if ($l -match '^\s*[-*]?\s*\[([^\]]+)\]\(([^)]*)\)') { $help.Links.Add([pscustomobject]@{ Text = $Matches[1]; Uri = $Matches[2] }) }
        elseif ($l -match '^\s*[-*]\s+(\S.*)$') { $help.Links.Add([pscustomobject]@{ Text = $Matches[1].Trim(); Uri = '' }) }
    }
    [pscustomobject]$help
}
#endregion

#region Check: the markdown describes exactly what the code has
$problems = [System.Collections.Generic.List[string]]::new()
$helps = @{}
foreach ($c in $commands) {
    $file = Join-Path $SourceDirectory "$($c.Name).md"
    if (-not (Test-Path -LiteralPath $file)) { $problems.Add("$($c.Name): no help file $file"); continue }
    $h = Read-CommandHelp $file
    if ($h.Name -ne $c.Name) { $problems.Add("${file}: its heading is '$($h.Name)', not '$($c.Name)'") }
    foreach ($p in $c.Parameters) {
        if (-not $h.Parameters.Contains($p.Name) -or -not ($h.Parameters[$p.Name] -join '').Trim()) {
            $problems.Add("$($c.Name): parameter -$($p.Name) has no description in $file")
        }
    }
    $known = @($c.Parameters | ForEach-Object { $_.Name }) + $(if ($c.ShouldProcess) { 'WhatIf', 'Confirm' })
    foreach ($p in $h.Parameters.Keys) {
        if ($p -notin $known) { $problems.Add("$($c.Name): $file describes -$p, which the cmdlet does not have") }
    }
    $helps[$c.Name] = $h
}
foreach ($md in Get-ChildItem $SourceDirectory -Filter '*-*.md') {
    if ($md.BaseName -notin @($commands | ForEach-Object { $_.Name })) { $problems.Add("$($md.Name) documents $($md.BaseName), which the module does not export") }
}
if ($problems.Count) {
    throw "Build-Help: the help does not match the module ($($problems.Count) problem(s)):`n  " + ($problems -join "`n  ")
}
#endregion

#region MAML
$ns = @{
    msh = 'http://msh'; maml = 'http://schemas.microsoft.com/maml/2004/10'; command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev = 'http://schemas.microsoft.com/maml/dev/2004/10'
}
$outDir = Join-Path $ModuleDirectory $Culture
New-Item -ItemType Directory -Force -Path $outDir | Out-Null
$mamlPath = Join-Path $outDir "$AssemblyName-Help.xml"
$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
$w = [System.Xml.XmlWriter]::Create($mamlPath, $settings)

function Write-Element([string] $Prefix, [string] $Name, [string] $Text) {
    $w.WriteStartElement($Prefix, $Name, $ns[$Prefix]); if ($null -ne $Text) { $w.WriteString($Text) }; $w.WriteEndElement()
}
function Write-Paras([string] $Prefix, [string] $Name, [string[]] $Paragraphs) {
    $w.WriteStartElement($Prefix, $Name, $ns[$Prefix])
    foreach ($p in $Paragraphs) { Write-Element maml para $p }
    $w.WriteEndElement()
}
function Write-Parameter($Command, $Param, $InSet, [string[]] $Description) {
    $pipeline = @(if ($InSet.ByValue) { 'ByValue' }; if ($InSet.ByPropertyName) { 'ByPropertyName' })
    $w.WriteStartElement('command', 'parameter', $ns.command)
    $w.WriteAttributeString('required', ([string][bool]$InSet.Mandatory).ToLower())
    $w.WriteAttributeString('variableLength', ([string]($Param.Type -like '*[[]]')).ToLower())
    $w.WriteAttributeString('globbing', ([string][bool]$Param.Globbing).ToLower())
    $w.WriteAttributeString('pipelineInput', $(if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }))
    $w.WriteAttributeString('position', $(if ($InSet.Position -ge 0) { [string]$InSet.Position } else { 'named' }))
    $w.WriteAttributeString('aliases', $(if ($Param.Aliases) { $Param.Aliases -join ', ' } else { 'none' }))
    Write-Element maml name $Param.Name
    Write-Paras maml description $Description
    if (-not $Param.IsSwitch) {
        $w.WriteStartElement('command', 'parameterValue', $ns.command)
        $w.WriteAttributeString('required', 'true'); $w.WriteAttributeString('variableLength', 'false')
        $w.WriteString($Param.Type); $w.WriteEndElement()
    }
    $w.WriteStartElement('dev', 'type', $ns.dev); Write-Element maml name $Param.FullType; Write-Element maml uri ''; $w.WriteEndElement()
    Write-Element dev defaultValue 'None'
    $w.WriteEndElement()
}

$shouldProcessText = @{
    WhatIf  = @('Shows what would happen if the cmdlet runs. The cmdlet is not run.')
    Confirm = @('Prompts you for confirmation before running the cmdlet.')
}
$w.WriteStartDocument()
$w.WriteStartElement('helpItems', $ns.msh)
$w.WriteAttributeString('schema', 'maml')
foreach ($c in $commands) {
    $h = $helps[$c.Name]
    $w.WriteStartElement('command', 'command', $ns.command)
    foreach ($p in 'maml', 'dev') { $w.WriteAttributeString('xmlns', $p, $null, $ns[$p]) }
    $w.WriteStartElement('command', 'details', $ns.command)
    Write-Element command name $c.Name
    Write-Element command verb $c.Verb
    Write-Element command noun $c.Noun
    Write-Paras maml description @($h.Synopsis)
    $w.WriteEndElement()
    Write-Paras maml description $h.Description

    $byName = @{}; foreach ($p in $c.Parameters) { $byName[$p.Name] = $p }
    $extra = if ($c.ShouldProcess) { 'WhatIf', 'Confirm' } else { @() }
    $describe = { param($n) if ($h.Parameters.Contains($n)) { $h.Parameters[$n] } else { $shouldProcessText[$n] } }
    $w.WriteStartElement('command', 'syntax', $ns.command)
    foreach ($set in $c.Sets | Sort-Object { -not $_.IsDefault }, Name) {
        $w.WriteStartElement('command', 'syntaxItem', $ns.command)
        Write-Element maml name $c.Name
        $ordered = $set.Parameters | Sort-Object { if ($_.Position -ge 0) { $_.Position } else { 1000 } }, { -not $_.Mandatory }, Name
        foreach ($sp in $ordered) { Write-Parameter $c $byName[$sp.Name] $sp (& $describe $sp.Name) }
        foreach ($n in $extra) { Write-Parameter $c ([pscustomobject]@{ Name = $n; Type = 'SwitchParameter'; FullType = 'System.Management.Automation.SwitchParameter'; IsSwitch = $true; Aliases = @(if ($n -eq 'WhatIf') { 'wi' } else { 'cf' }); Globbing = $false }) ([pscustomobject]@{ Mandatory = $false; Position = -1; ByValue = $false; ByPropertyName = $false }) (& $describe $n) }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'parameters', $ns.command)
    foreach ($p in $c.Parameters | Sort-Object Name) {
        # One entry per parameter: mandatory/position/pipeline as in the first set that has it (the default set first).
        $inSets = @($c.Sets | Sort-Object { -not $_.IsDefault } | ForEach-Object { $_.Parameters | Where-Object Name -eq $p.Name })
        $merged = [pscustomobject]@{
            Mandatory = [bool]($inSets | Where-Object Mandatory | Select-Object -First 1) -and -not ($inSets | Where-Object { -not $_.Mandatory })
            Position = $inSets[0].Position
            ByValue = [bool]($inSets | Where-Object ByValue); ByPropertyName = [bool]($inSets | Where-Object ByPropertyName)
        }
        Write-Parameter $c $p $merged (& $describe $p.Name)
    }
    foreach ($n in $extra) { Write-Parameter $c ([pscustomobject]@{ Name = $n; Type = 'SwitchParameter'; FullType = 'System.Management.Automation.SwitchParameter'; IsSwitch = $true; Aliases = @(if ($n -eq 'WhatIf') { 'wi' } else { 'cf' }); Globbing = $false }) ([pscustomobject]@{ Mandatory = $false; Position = -1; ByValue = $false; ByPropertyName = $false }) (& $describe $n) }
    $w.WriteEndElement()

    foreach ($kind in @(@('inputTypes', 'inputType', $h.Inputs), @('returnValues', 'returnValue', $h.Outputs))) {
        $w.WriteStartElement('command', $kind[0], $ns.command)
        foreach ($t in $kind[2]) {
            $w.WriteStartElement('command', $kind[1], $ns.command)
            $w.WriteStartElement('dev', 'type', $ns.dev); Write-Element maml name $t.Type; $w.WriteEndElement()
            Write-Paras maml description $t.Description
            $w.WriteEndElement()
        }
        $w.WriteEndElement()
    }
    if ($h.Notes) {
        $w.WriteStartElement('maml', 'alertSet', $ns.maml)
        $w.WriteStartElement('maml', 'alert', $ns.maml); foreach ($n in $h.Notes) { Write-Element maml para $n }; $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteStartElement('command', 'examples', $ns.command)
    foreach ($e in $h.Examples) {
        $w.WriteStartElement('command', 'example', $ns.command)
        Write-Element maml title "-------------------------- $($e.Title) --------------------------"
        Write-Element dev code $e.Code
        Write-Paras dev remarks $e.Remarks
        $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteStartElement('command', 'relatedLinks', $ns.command)
    foreach ($l in $h.Links) {
        $w.WriteStartElement('maml', 'navigationLink', $ns.maml); Write-Element maml linkText $l.Text; Write-Element maml uri $l.Uri; $w.WriteEndElement()
    }
    $w.WriteEndElement()
    $w.WriteEndElement()
}
$w.WriteEndElement()
$w.WriteEndDocument()
$w.Dispose()
Write-Host "Help: $mamlPath ($($commands.Count) cmdlets)"
#endregion

#region about_ topics: markdown headings become the usual upper-case headings, text indented four spaces
foreach ($md in Get-ChildItem $SourceDirectory -Filter 'about_*.md') {
    $text = [System.Text.StringBuilder]::new()
    $inCode = $false
    foreach ($line in Get-Content -LiteralPath $md.FullName) {
        if ($line -match '^```') { $inCode = -not $inCode; continue }
        if ($inCode) { [void]$text.AppendLine(('        ' + $line).TrimEnd()); continue }
        if ($line -match '^#\s+(about_\w+)\s*$') { [void]$text.AppendLine('TOPIC').AppendLine("    $($Matches[1])"); continue }
        if ($line -match '^#{2,}\s+(.+)$') { [void]$text.AppendLine().AppendLine($Matches[1].Trim().ToUpperInvariant()); continue }
        [void]$text.AppendLine($(if ($line.Trim()) { ('    ' + $line.TrimEnd()) -replace '\*\*', '' } else { '' }))
    }
    if ($inCode) { throw "Build-Help: $($md.Name) has an unterminated code block." }
    $target = Join-Path $outDir "$($md.BaseName).help.txt"
    [IO.File]::WriteAllText($target, ($text.ToString() -replace '(\r?\n){3,}', "`n`n"), [System.Text.UTF8Encoding]::new($false))
    Write-Host "Help: $target"
}
#endregion
