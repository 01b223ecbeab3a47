# Connect-FullStory and the shared session: key sources, region, base URI rules, default session per runspace, and the key never shown.
BeforeAll {
    Import-Module "$PSScriptRoot/TestHelpers.psm1" -Force
    $script:ModulePath = Get-TestModulePath
    Import-Module $ModulePath -Force
    $script:Key = 'na1.S3cretKeyValue9876543210abcd3f2a'
}
Describe 'Sessions' {
AfterEach { Disconnect-FullStory }

Describe 'Connect-FullStory' {
    It 'takes a plain string key and keeps a default session' {
        Connect-FullStory -ApiKey $Key
        $s = Get-FullStorySession
        $s.Region | Should -Be 'Na1'
        $s.ApiBaseUri | Should -Be 'https://api.fullstory.com/'
        $s.ExportBaseUri | Should -Be 'https://export.fullstory.com/'
        $s.MaskedApiKey | Should -Be 'na1.****3f2a'
    }
    It 'takes a SecureString key' {
        $secure = ConvertTo-SecureString $Key -AsPlainText -Force
        (Connect-FullStory -ApiKey $secure -PassThru).MaskedApiKey | Should -Be 'na1.****3f2a'
    }
    It 'takes a PSCredential whose password is the key' {
        $cred = [pscredential]::new('ignored', (ConvertTo-SecureString 'eu1.AnotherKey0000000000000000ab12' -AsPlainText -Force))
        $s = Connect-FullStory -Credential $cred -PassThru
        $s.Region | Should -Be 'Eu1'
        $s.ApiBaseUri | Should -Be 'https://api.eu1.fullstory.com/'
        $s.MaskedApiKey | Should -Be 'eu1.****ab12'
    }
    It 'reads FULLSTORY_API_KEY when no key is given' {
        $env:FULLSTORY_API_KEY = 'eu1.FromTheEnvironment000000000077aa'
        try { (Connect-FullStory -PassThru).MaskedApiKey | Should -Be 'eu1.****77aa' }
        finally { Remove-Item Env:FULLSTORY_API_KEY }
    }
    It 'says what to do when there is no key at all' {
        Remove-Item Env:FULLSTORY_API_KEY -ErrorAction SilentlyContinue
        { Connect-FullStory -ErrorAction Stop } | Should -Throw -ErrorId 'FullStory.NoApiKey,FullStory.PowerShell.Commands.ConnectFullStoryCommand' -ExpectedMessage '*FULLSTORY_API_KEY*'
    }
    It 'lets -Region override the key prefix' {
        (Connect-FullStory -ApiKey $Key -Region Eu1 -PassThru).ApiBaseUri | Should -Be 'https://api.eu1.fullstory.com/'
    }
    It 'accepts plain http only to this machine' {
        (Connect-FullStory -ApiKey $Key -BaseUri 'http://127.0.0.1:5000' -PassThru).ApiBaseUri | Should -Be 'http://127.0.0.1:5000/'
        (Connect-FullStory -ApiKey $Key -BaseUri 'http://localhost:5000/' -PassThru).ExportBaseUri | Should -Be 'http://localhost:5000/'
        (Connect-FullStory -ApiKey $Key -BaseUri 'https://proxy.example.com/fs/' -PassThru).ApiBaseUri | Should -Be 'https://proxy.example.com/fs/'
        { Connect-FullStory -ApiKey $Key -BaseUri 'http://proxy.example.com' -ErrorAction Stop } | Should -Throw -ExpectedMessage '*plain http*not this machine*'
        { Connect-FullStory -ApiKey $Key -BaseUri 'ftp://127.0.0.1' -ErrorAction Stop } | Should -Throw -ExpectedMessage '*must use https*'
    }
    It 'refuses a key whose prefix names no FullStory data centre, unless -Region says where to send it' {
        $e = $null
        try { Connect-FullStory -ApiKey 'zz9.AbCdEfGhIjKlMnOpQr' -ErrorAction Stop } catch { $e = $_ }
        $e.FullyQualifiedErrorId | Should -BeLike 'FullStory.InvalidConnection,*'
        $e.Exception.Message | Should -Match "'zz9\.'.*na1 and eu1"
        $e.Exception.Message | Should -Not -Match 'AbCdEfGhIjKlMnOpQr'
        Get-FullStorySession -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        (Connect-FullStory -ApiKey 'zz9.AbCdEfGhIjKlMnOpQr' -Region Eu1 -PassThru -WarningVariable w).Region | Should -Be 'Eu1'
        $w | Should -BeNullOrEmpty
    }
    It 'warns which region it assumed for a key without a prefix; not for a na1./eu1. key, with -Region or with -BaseUri' {
        $s = Connect-FullStory -ApiKey 'AbCdEfGhIjKlMnOpQrSt' -PassThru -WarningVariable w -WarningAction SilentlyContinue
        $s.Region | Should -Be 'Na1'
        $s.IsRegionAssumed | Should -BeTrue
        @($w).Count | Should -Be 1
        $w[0].Message | Should -Match 'no data-centre prefix.*assuming region Na1 \(api\.fullstory\.com.*-Region Eu1'
        foreach ($quiet in @{ ApiKey = $Key }, @{ ApiKey = 'AbCdEfGhIjKlMnOpQrSt'; Region = 'Eu1' }, @{ ApiKey = 'AbCdEfGhIjKlMnOpQrSt'; BaseUri = 'http://127.0.0.1:5000' }) {
            Connect-FullStory @quiet -WarningVariable w2 -WarningAction SilentlyContinue
            $w2 | Should -BeNullOrEmpty -Because ($quiet.Keys -join ', ')
        }
    }
    It "shows the masked key as the README's example says, for a long key and a short one" {
        $readme = Get-Content -Raw (Join-Path (Get-RepoRoot) 'README.md')
        $readme | Should -Match 'masked key: na1\.\*\*\*\*3f2a'
        $readme | Should -Match 'fewer than 12 characters after na1\. shows only na1\.\*\*\*\*\)'
        (Connect-FullStory -ApiKey $Key -PassThru).MaskedApiKey | Should -Be 'na1.****3f2a'
        (Connect-FullStory -ApiKey 'na1.abcdefghijk' -PassThru).MaskedApiKey | Should -Be 'na1.****'
        (Connect-FullStory -ApiKey 'na1.abcdefghijkl' -PassThru).MaskedApiKey | Should -Be 'na1.****ijkl'
    }
    It 'refuses a key with spaces inside' {
        { Connect-FullStory -ApiKey 'na1.abc def' -ErrorAction Stop } | Should -Throw -ExpectedMessage '*spaces or control characters*'
    }
}

Describe 'The default session' {
    It 'is required by cmdlets that talk to FullStory, with a clear error' {
        { Get-FullStoryBundle -ErrorAction Stop } | Should -Throw -ExpectedMessage '*Run Connect-FullStory*'
    }
    It 'is cleared by Disconnect-FullStory' {
        Connect-FullStory -ApiKey $Key
        Disconnect-FullStory
        Get-FullStorySession -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
    It 'is kept per runspace' {
        Connect-FullStory -ApiKey $Key
        $ps = [powershell]::Create()
        try {
            $ps.AddScript("Import-Module '$ModulePath'; Get-FullStorySession -ErrorAction SilentlyContinue; 'done'") | Out-Null
            $out = $ps.Invoke()
            $out | Should -Be @('done')
        }
        finally { $ps.Dispose() }
        Get-FullStorySession | Should -Not -BeNullOrEmpty
    }
    It 'can be bypassed with -Session' {
        $emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '10')
        try {
            $s = Connect-FullStory -ApiKey $emulator.ApiKey -BaseUri $emulator.BaseUri -PassThru
            Disconnect-FullStory
            (Get-FullStoryBundle -Session $s -Start '2000-01-01' -WarningAction SilentlyContinue).Count | Should -Be 2
        }
        finally { Stop-TestEmulator $emulator }
    }
}

Describe 'The API key never appears' {
    It 'in any output stream, formatting, ToString, errors or an Export-Clixml file' {
        $emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '10')
        $clixml = Join-Path ([IO.Path]::GetTempPath()) "session-$([guid]::NewGuid()).xml"
        $wrongKey = 'na1.WrongButSecret00000000000000zz99'
        try {
            $script = @"
`$VerbosePreference = 'Continue'; `$DebugPreference = 'Continue'; `$InformationPreference = 'Continue'
Import-Module '$ModulePath'
`$s = Connect-FullStory -ApiKey '$($emulator.ApiKey)' -BaseUri '$($emulator.BaseUri)' -PassThru -Verbose -Debug
`$s; `$s | Format-List *; `$s | Format-Table *; `$s.ToString(); `$s | ConvertTo-Json -Depth 5; `$s | Get-Member | Out-String
Get-FullStorySession | Format-List * -Force
`$s | Export-Clixml '$clixml'
Get-FullStoryBundle -Start 2000-01-01 -Verbose -Debug | Receive-FullStoryEvent -Verbose -Debug | Select-Object -First 2 | Format-List *
Connect-FullStory -ApiKey '$wrongKey' -BaseUri '$($emulator.BaseUri)' -MaxAttempts 1 -Verbose
try { Get-FullStoryBundle -Start 2000-01-01 -Verbose -ErrorAction Stop } catch { `$_ | Format-List * -Force; `$_.Exception | Format-List * -Force; `$_.ErrorDetails | Format-List * -Force }
Receive-FullStoryEvent -Id 1 -Verbose -ErrorAction Continue
`$Error | Format-List * -Force
"@
            $r = Invoke-FreshPwsh -Script $script
            $all = $r.Output + $r.Errors + (Get-Content -Raw $clixml)
            $all | Should -Match 'na1\.\*\*\*\*key1'      # the masked form is there: the output was captured
            $all | Should -Match 'check the API key'       # and so is the refusal
            $all | Should -Not -Match ([regex]::Escape($emulator.ApiKey))
            $all | Should -Not -Match ([regex]::Escape($wrongKey))
            $all | Should -Not -Match ([regex]::Escape($wrongKey.Substring(4, 20)))
        }
        finally { Stop-TestEmulator $emulator; Remove-Item $clixml -ErrorAction SilentlyContinue }
    }
    It 'is sent only to the API host, never to a download location' {
        $emulator = Start-TestEmulator -Arguments @('--bundles', '2', '--events-per-bundle', '30')
        try {
            Connect-FullStory -ApiKey $emulator.ApiKey -BaseUri $emulator.BaseUri -PollInterval '00:00:00.05'
            $start = (Invoke-Emulator $emulator '/_emulator/dataset').bundles[0].StartTime
            $n = (Receive-FullStoryEvent -Start ([datetime]$start).ToUniversalTime() -End ([datetime]$start).ToUniversalTime().AddDays(2) | Measure-Object).Count
            $n | Should -Be 60
            $stats = Invoke-Emulator $emulator '/_emulator/stats'
            $stats.keyLeaks.count | Should -Be 0
            ($stats.requests | Where-Object endpoint -eq 'download').hadAuthorization | Should -Not -Contain $true
            ($stats.requests | Where-Object endpoint -eq 'download').Count | Should -BeGreaterThan 0
        }
        finally { Stop-TestEmulator $emulator }
    }
}
}
