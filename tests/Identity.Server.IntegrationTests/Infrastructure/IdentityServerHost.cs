using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>One Identity server (the real Program) over real HTTP semantics, configured only through settings.</summary>
public sealed class IdentityServerHost(IReadOnlyDictionary<string, string?> settings, ILoggerProvider? logs = null)
    : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        // Test databases are thrown away: no certificate protects their data-protection key ring (a test sets one when it needs it).
        builder.UseSetting("DataProtection:AllowUnprotectedKeys", "true");
        // A user or account change that escapes its operation fails the test that made it (decision 0069).
        builder.UseSetting(Core.Operations.ChangesOutsideOperations.SettingName, nameof(Core.Operations.OutsideChangeMode.Fail));
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging =>
        {
            if (logs is null)
            {
                logging.SetMinimumLevel(LogLevel.Warning);
            }
            else
            {
                // Debug for everything, OpenIddict included: stricter than any shipped configuration.
                logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug).AddFilter("OpenIddict", LogLevel.Debug);
            }
        });
    }

    /// <summary>Starts the host (migrations, keys, declared clients) and returns a client for it.</summary>
    public HttpClient Start() => CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
}
