using Identity.Server.Clients;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Identity.Server.Hosting;

public static class StartupBanner
{
    /// <summary>Once listening, tell a newcomer where the issuer is and how to get a first token.</summary>
    public static WebApplication MapStartupBanner(this WebApplication app)
    {
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
            var issuer = app.Services.GetRequiredService<IOptions<OidcOptions>>().Value.Issuer?.AbsoluteUri.TrimEnd('/') ?? address;
            app.Logger.LogInformation("Identity is listening on {Address}; issuer {Issuer}", address, issuer);
            Console.WriteLine($"""

                Identity is running.
                  Discovery: {issuer}/.well-known/openid-configuration
                  JWKS:      {issuer}/.well-known/jwks
                  A token:   curl -s -u {ClientSeeder.DemoClientId}:<secret printed on first run> -d grant_type=client_credentials -d scope={ClientSeeder.DemoScope} {issuer}/connect/token

                """);
        });
        return app;
    }
}
