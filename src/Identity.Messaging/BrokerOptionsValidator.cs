using Microsoft.Extensions.Options;

namespace Identity.Messaging;

/// <summary>Refuses a broker configuration that cannot work, naming the key (checked at start-up).</summary>
public sealed class BrokerOptionsValidator : IValidateOptions<BrokerOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerOptions options)
    {
        var failures = new List<string>();
        const string Section = BrokerOptions.SectionName;
        if (string.IsNullOrWhiteSpace(options.Host))
        {
            failures.Add($"{Section}:Host is required.");
        }

        if (options.Port is < 1 or > 65535)
        {
            failures.Add($"{Section}:Port must be between 1 and 65535 (AMQPS is 5671).");
        }

        if (string.IsNullOrEmpty(options.VirtualHost))
        {
            failures.Add($"{Section}:VirtualHost must not be empty (the default vhost is \"/\").");
        }

        RequireFile(failures, $"{Section}:CaCertificatePath", options.CaCertificatePath, "the broker's CA certificate (PEM)");
        RequireFile(failures, $"{Section}:ClientCertificatePath", options.ClientCertificatePath, "this client's certificate and key (.pfx)");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Throws <see cref="OptionsValidationException"/> when <paramref name="options"/> is invalid.</summary>
    public static void ThrowIfInvalid(BrokerOptions options)
    {
        var result = new BrokerOptionsValidator().Validate(Options.DefaultName, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(BrokerOptions), result.Failures);
        }
    }

    private static void RequireFile(List<string> failures, string key, string path, string what)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            failures.Add($"{key} is required: {what}.");
        }
        else if (!File.Exists(path))
        {
            failures.Add($"{key}: file '{path}' not found ({what}).");
        }
    }
}
