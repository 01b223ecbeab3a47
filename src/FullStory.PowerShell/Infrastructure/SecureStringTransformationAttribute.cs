using System.Management.Automation;
using System.Security;

namespace FullStory.PowerShell.Infrastructure;

/// <summary>Lets a SecureString parameter also take a plain string, as scripts pass $env:FULLSTORY_API_KEY.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class SecureStringTransformationAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject pso ? pso.BaseObject : inputData;
        if (value is string text)
        {
            var secure = new SecureString();
            foreach (char c in text) secure.AppendChar(c);
            secure.MakeReadOnly();
            return secure;
        }
        return inputData;
    }
}
