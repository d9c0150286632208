using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Identity.Region.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>
/// A regional API protected by the library, on Kestrel over TLS on a free port, asking callers for a certificate:
/// <c>GET /orders</c> answers the caller's <c>client_id</c> to an accepted token.
/// </summary>
public sealed class RegionApiHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly X509Certificate2 _serverCertificate;

    private RegionApiHost(WebApplication app, X509Certificate2 serverCertificate, CapturedLog log) =>
        (_app, _serverCertificate, Log) = (app, serverCertificate, log);

    public Uri BaseAddress => new(_app.Urls.Single(u => u.StartsWith("https", StringComparison.Ordinal)).TrimEnd('/') + "/");

    /// <summary>A plain HTTP port of the same API (the side a TLS-ending proxy talks to).</summary>
    public Uri PlainAddress => new(_app.Urls.Single(u => u.StartsWith("http:", StringComparison.Ordinal)).TrimEnd('/') + "/");

    public CapturedLog Log { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<RegionApiHost> StartAsync(
        TimeProvider clock, IDictionary<string, string?> settings, X509Certificate2 serverCertificate, Action<IServiceCollection>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        var log = new CapturedLog();
        builder.Logging.ClearProviders().AddProvider(log).SetMinimumLevel(LogLevel.Information);
        builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(https =>
            {
                https.ServerCertificate = serverCertificate;
                https.AskForClientCertificate();
            }));
            kestrel.Listen(IPAddress.Loopback, 0);
        });
        builder.Services.AddSingleton(clock);
        builder.Services.AddIdentityTokenValidation();
        builder.Services.AddAuthorization();
        configure?.Invoke(builder.Services);
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/orders", (HttpContext context) => context.User.FindFirst("client_id")?.Value).RequireAuthorization();
        await app.StartAsync();
        return new RegionApiHost(app, serverCertificate, log);
    }

    /// <summary>A caller over TLS presenting <paramref name="certificate"/> (none when null), a new connection per client.</summary>
    public HttpClient Caller(X509Certificate2? certificate)
    {
        var serverCertificate = _serverCertificate;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                ClientCertificates = certificate is null ? null : new X509CertificateCollection { certificate },
            },
        };
        return new HttpClient(handler) { BaseAddress = BaseAddress };
    }

    /// <summary>
    /// A caller presenting <paramref name="certificate"/> without looking for its issuer (SslStream's client otherwise
    /// builds the certificate's chain to send its intermediates, fetching the AIA issuer itself).
    /// </summary>
    public HttpClient OfflineCaller(X509Certificate2 certificate)
    {
        var serverCertificate = _serverCertificate;
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, presented, _, _) =>
                    presented is not null && presented.GetCertHashString() == serverCertificate.GetCertHashString(),
                ClientCertificateContext = SslStreamCertificateContext.Create(certificate, null, offline: true),
            },
        };
        return new HttpClient(handler) { BaseAddress = BaseAddress };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Log lines of a host, for tests that assert what an operator reads.</summary>
public sealed class CapturedLog : ILoggerProvider
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(LogLevel Level, string Category, string Message)> _lines = new();

    public IReadOnlyList<(LogLevel Level, string Category, string Message)> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, System.Collections.Concurrent.ConcurrentQueue<(LogLevel, string, string)> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue((logLevel, category, formatter(state, exception)));
    }
}
