using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Identity.Messaging.Tests.Propagation;

/// <summary>
/// One Identity server process (the real Program), configured through settings (and <paramref name="services"/>, for
/// what a test observes from inside, such as an in-memory trace exporter).
/// </summary>
public sealed class AuthorityHost(IReadOnlyDictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        // Test databases are thrown away: no certificate protects their data-protection key ring (a test sets one when it needs it).
        builder.UseSetting("DataProtection:AllowUnprotectedKeys", "true");
        builder.UseSetting("Propagation:ChangesOutsideOperations", "Fail");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        if (services is not null)
        {
            builder.ConfigureServices(services);
        }
    }

    /// <summary>Starts the host (migrations, declared clients, the dispatcher when a broker is set) and returns a client.</summary>
    public HttpClient Start() => CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
}
