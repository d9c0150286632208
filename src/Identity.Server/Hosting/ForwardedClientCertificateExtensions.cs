using System.Net;
using Identity.Shared;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Identity.Server.Hosting;

/// <summary>
/// Mutual TLS terminated by a proxy (nginx, ingress-nginx, Envoy) that forwards the client certificate in
/// <c>Mtls:ForwardedCertificateHeader</c>, read by ASP.NET Core's certificate forwarding. The header is believed only
/// from a peer named in <c>ForwardedHeaders:KnownProxies</c>/<c>KnownNetworks</c> (the proxies whose
/// <c>X-Forwarded-For</c> is believed, decision 0038) and only on requests to <c>Mtls:BaseUri</c>'s host, so that the
/// browser host never carries a client certificate; everywhere else it is removed before anything reads it.
/// </summary>
public static class ForwardedClientCertificateExtensions
{
    public static IHostApplicationBuilder AddForwardedClientCertificate(this IHostApplicationBuilder builder, MutualTlsOptions options)
    {
        if (options.ForwardedCertificate)
        {
            builder.Services.AddCertificateForwarding(forwarding =>
            {
                forwarding.CertificateHeader = options.ForwardedCertificateHeader!;
                forwarding.HeaderConverter = ForwardedCertificateHeader.Parse;
            });
        }

        return builder;
    }

    /// <summary>Before <c>UseForwardedHeaders</c>, which replaces the peer's address by the forwarded one.</summary>
    public static WebApplication UseForwardedClientCertificate(this WebApplication app)
    {
        var mtls = app.Services.GetRequiredService<IOptions<MutualTlsOptions>>().Value;
        if (!mtls.ForwardedCertificate)
        {
            return app;
        }

        var header = mtls.ForwardedCertificateHeader!;
        var host = mtls.BaseUri!.IdnHost;
        var proxies = app.Services.GetRequiredService<IOptions<ForwardedHeadersOptions>>().Value;
        app.Use((context, next) =>
        {
            if (IsKnownProxy(proxies, context.Connection.RemoteIpAddress)
                && string.Equals(context.Request.Host.Host, host, StringComparison.OrdinalIgnoreCase))
            {
                context.Features.Set(new ProxiedMutualTlsRequest(context.Request.Headers.ContainsKey(header)));
            }
            else
            {
                context.Request.Headers.Remove(header);
            }

            return next(context);
        });
        app.UseCertificateForwarding();
        return app;
    }

    /// <summary>The rule of <c>ForwardedHeadersMiddleware</c>: a named address, or one in a named network.</summary>
    private static bool IsKnownProxy(ForwardedHeadersOptions proxies, IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6 && IsKnownProxy(proxies, address.MapToIPv4()))
        {
            return true;
        }

        return proxies.KnownProxies.Contains(address) || proxies.KnownIPNetworks.Any(network => network.Contains(address));
    }
}

/// <summary>
/// Set on a request that a known proxy sent to the mTLS host: it is on the mTLS endpoint as much as one on
/// <c>Mtls:Port</c>. <paramref name="HeaderPresent"/> with no certificate read from it means the header was malformed.
/// </summary>
public sealed record ProxiedMutualTlsRequest(bool HeaderPresent)
{
    /// <summary>On the mTLS endpoint: Kestrel's mTLS port, or the mTLS host through a known proxy.</summary>
    public static bool Applies(HttpContext context, MutualTlsOptions options) =>
        (options.Port is { } port && context.Connection.LocalPort == port) || context.Features.Get<ProxiedMutualTlsRequest>() is not null;
}
