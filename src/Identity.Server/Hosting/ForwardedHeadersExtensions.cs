using System.Net;
using Microsoft.AspNetCore.HttpOverrides;

namespace Identity.Server.Hosting;

/// <summary>
/// <c>X-Forwarded-For</c> / <c>-Proto</c> are honoured only from the proxies named in configuration
/// (<c>ForwardedHeaders:KnownProxies</c> addresses, <c>ForwardedHeaders:KnownNetworks</c> CIDRs), and with none named,
/// from nobody (not even loopback, unless named): anyone else could otherwise claim any address and walk past the
/// per-IP throttle and the accounts' IP allow-lists, and forge the audit trail's addresses.
/// </summary>
public static class ForwardedHeadersExtensions
{
    public static IHostApplicationBuilder AddTrustedProxies(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection("ForwardedHeaders");
        var proxies = section.GetSection("KnownProxies").Get<string[]>() ?? [];
        var networks = section.GetSection("KnownNetworks").Get<string[]>() ?? [];
        builder.Services.Configure<ForwardedHeadersOptions>(options =>
        {
            options.KnownProxies.Clear();
            options.KnownIPNetworks.Clear();
            foreach (var proxy in proxies)
            {
                options.KnownProxies.Add(IPAddress.TryParse(proxy, out var address)
                    ? address
                    : throw new InvalidOperationException($"ForwardedHeaders:KnownProxies: '{proxy}' is not an IP address."));
            }

            foreach (var network in networks)
            {
                options.KnownIPNetworks.Add(System.Net.IPNetwork.TryParse(network, out var parsed)
                    ? parsed
                    : throw new InvalidOperationException($"ForwardedHeaders:KnownNetworks: '{network}' is not a CIDR range."));
            }

            // ForwardedHeadersMiddleware skips its check of the peer when both lists are empty, and then believes every
            // peer: with no proxy named, it reads no header at all.
            options.ForwardedHeaders = options.KnownProxies.Count + options.KnownIPNetworks.Count > 0
                ? ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto
                : ForwardedHeaders.None;
        });
        return builder;
    }
}
