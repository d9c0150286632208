using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
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
                if (context.Connection.ClientCertificate is null && proxies.Contains(context.Connection.RemoteIpAddress))
                {
                    context.Connection.ClientCertificate = Read(forwarded.ToString());
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

    /// <summary>A PEM certificate, URL-encoded (nginx's <c>$ssl_client_escaped_cert</c>) or not, or base64 DER; null if neither.</summary>
    internal X509Certificate2? Read(string value)
    {
        try
        {
            var text = value.Contains('%', StringComparison.Ordinal) ? Uri.UnescapeDataString(value) : value;
            return text.Contains("-----BEGIN", StringComparison.Ordinal)
                ? X509Certificate2.CreateFromPem(text)
                : X509CertificateLoader.LoadCertificate(Convert.FromBase64String(text));
        }
        catch (Exception e) when (e is CryptographicException or FormatException or ArgumentException)
        {
            logger.LogInformation("A trusted proxy forwarded a certificate header that is not a certificate: ignored.");
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
