using System.Net;
using System.Security.Cryptography.X509Certificates;
using Identity.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Identity.Region.Validation;

/// <summary>
/// Behind a proxy that ends TLS, the caller's certificate arrives in a header. It is believed only when the TCP peer
/// is one of <see cref="IdentityTokenValidationOptions.TrustedProxies"/>; from anyone else the header is removed
/// unread, so nothing later in the pipeline takes a forged one for the caller's. Runs first in the pipeline (a
/// startup filter), before the host's own middleware such as UseForwardedHeaders rewrites the peer address.
/// </summary>
internal sealed class ForwardedCertificateFilter(IOptions<IdentityTokenValidationOptions> options, ILogger<ForwardedCertificateFilter> logger) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        var settings = options.Value;
        var proxies = TrustedProxies.Parse(settings.TrustedProxies);
        var header = settings.ForwardedCertificateHeader;
        app.Use((context, nextMiddleware) =>
        {
            if (!string.IsNullOrEmpty(header) && context.Request.Headers.TryGetValue(header, out var forwarded))
            {
                context.Request.Headers.Remove(header);
                if (context.Connection.ClientCertificate is null && proxies.Contains(context.Connection.RemoteIpAddress)
                    && Read(forwarded.ToString()) is { } certificate)
                {
                    context.Connection.ClientCertificate = certificate;
                    // A client certificate travels only in TLS: the proxy ended the caller's https connection. Without
                    // this the Certificate handler, which reads https requests only, never sees it (unless the host
                    // also runs UseForwardedHeaders with the proxy's X-Forwarded-Proto).
                    context.Request.Scheme = Uri.UriSchemeHttps;
                }
                else if (context.Connection.ClientCertificate is null)
                {
                    logger.LogDebug("A forwarded certificate header from {Address}, not a trusted proxy, was ignored.", context.Connection.RemoteIpAddress);
                }
            }

            return nextMiddleware(context);
        });
        next(app);
    };

    /// <summary>The certificate in the forms <see cref="ForwardedCertificateHeader"/> reads (the authority's parser); null if none.</summary>
    internal X509Certificate2? Read(string value)
    {
        try
        {
            return ForwardedCertificateHeader.Parse(value);
        }
        catch (FormatException e)
        {
            // The parser's message says what is wrong, never the header's content.
            logger.LogInformation("A trusted proxy forwarded a certificate header that was ignored: {Reason}", e.Message);
            return null;
        }
    }
}

/// <summary>IP addresses and CIDR ranges (IPv4 and IPv6) of trusted proxies.</summary>
internal sealed class TrustedProxies
{
    private readonly IPNetwork[] _networks;

    private TrustedProxies(IPNetwork[] networks) => _networks = networks;

    public static bool TryParse(string value, out IPNetwork network)
    {
        if (IPAddress.TryParse(value, out var address))
        {
            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }

        return IPNetwork.TryParse(value, out network);
    }

    public static TrustedProxies Parse(IEnumerable<string> values) =>
        new([.. values.Select(v => TryParse(v, out var network) ? network : throw new FormatException($"'{v}' is not an IP address or CIDR range."))]);

    public bool Contains(IPAddress? address)
    {
        if (address is null || _networks.Length == 0)
        {
            return false;
        }

        var candidate = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return _networks.Any(n => n.Contains(candidate));
    }
}
