using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Identity.Server.Hosting;

/// <summary>
/// Ports a concern opens in code (the mTLS port, the management port). Kestrel drops the hosting URLs (ASPNETCORE_URLS,
/// <c>--urls</c>) as soon as one endpoint is added in code, so they are bound again here, once, after every concern
/// added its own (a post-configuration: the HTTPS defaults a concern sets apply to them too).
/// </summary>
internal static class KestrelListeners
{
    public static void AddListener(this IHostApplicationBuilder builder, Action<KestrelServerOptions> listen)
    {
        if (!builder.Services.Any(d => d.ImplementationInstance is HostingUrlsBoundAgain))
        {
            builder.Services.AddSingleton<IPostConfigureOptions<KestrelServerOptions>>(
                new HostingUrlsBoundAgain(builder.Configuration[WebHostDefaults.ServerUrlsKey]));
        }

        builder.Services.Configure(listen);
    }

    private sealed class HostingUrlsBoundAgain(string? hostingUrls) : IPostConfigureOptions<KestrelServerOptions>
    {
        public void PostConfigure(string? name, KestrelServerOptions kestrel)
        {
            foreach (var url in (hostingUrls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                ListenOn(kestrel, BindingAddress.Parse(url));
            }
        }

        private static void ListenOn(KestrelServerOptions kestrel, BindingAddress address)
        {
            void Configure(ListenOptions listen)
            {
                if (address.Scheme == Uri.UriSchemeHttps)
                {
                    listen.UseHttps();
                }
            }

            if (string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                kestrel.ListenLocalhost(address.Port, Configure);
            }
            else if (IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip))
            {
                kestrel.Listen(ip, address.Port, Configure);
            }
            else
            {
                kestrel.ListenAnyIP(address.Port, Configure); // "*", "+" or a host name, as Kestrel binds them itself
            }
        }
    }
}
