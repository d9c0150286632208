using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.BrowserTests.Infrastructure;

/// <summary>
/// An app (its real Program) on a real Kestrel socket at 127.0.0.1 (or at <c>localhost</c>, both loopback
/// addresses), configured through settings (and, for what settings cannot say, <paramref name="services"/>: a test
/// clock): a browser cannot reach the in-memory TestServer.
/// </summary>
public sealed class KestrelHost<TEntryPoint>(
    int port, IReadOnlyDictionary<string, string?> settings, string host = KestrelHost.Loopback, Action<IServiceCollection>? services = null)
    : WebApplicationFactory<TEntryPoint> where TEntryPoint : class
{
    public Uri BaseAddress { get; } = new($"http://{host}:{port}/");

    /// <summary>Builds and starts the host; the socket is listening when this returns.</summary>
    public KestrelHost<TEntryPoint> Start()
    {
        UseKestrel(kestrel =>
        {
            if (host == KestrelHost.Localhost)
            {
                kestrel.ListenLocalhost(port); // 127.0.0.1 and [::1]: the browser may try either for "localhost"
            }
            else
            {
                kestrel.Listen(IPAddress.Loopback, port);
            }
        });
        StartServer();
        return this;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Logging:LogLevel:Default", "Warning"); // the apps' appsettings say Information
        // Test databases are thrown away: no certificate protects their data-protection key ring (a test sets one when it needs it).
        builder.UseSetting("DataProtection:AllowUnprotectedKeys", "true");
        // Identity's hosts: a user or account change that escapes its operation fails the test (decision 0069).
        builder.UseSetting("Propagation:ChangesOutsideOperations", "Fail");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        if (services is not null)
        {
            builder.ConfigureTestServices(services);
        }
    }
}

/// <summary>The two names a test host can have.</summary>
public static class KestrelHost
{
    public const string Loopback = "127.0.0.1";

    /// <summary>A host name, not an address: WebAuthn relying-party IDs are domains, never IP addresses.</summary>
    public const string Localhost = "localhost";
}
