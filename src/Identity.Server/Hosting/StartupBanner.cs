using Identity.Server.Clients;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace Identity.Server.Hosting;

public static class StartupBanner
{
    /// <summary>Once listening, tell a newcomer where the issuer is and how to get a first token.</summary>
    public static WebApplication MapStartupBanner(this WebApplication app)
    {
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();

            // The issuer exactly as published (OidcOptionsValidator holds it to the configured string); without one
            // (Development), OpenIddict takes the request's base URI, which ends with a slash.
            var issuer = app.Services.GetRequiredService<IOptions<OidcOptions>>().Value.Issuer?.AbsoluteUri
                ?? (address is null ? null : address.TrimEnd('/') + "/");
            app.Logger.LogInformation("Identity is listening on {Address}; issuer {Issuer}", address, issuer);
            if (issuer is null)
            {
                return;
            }

            // Started: the store is initialised, so the lookup answers. The demo client exists only on a first run of
            // the embedded default with nothing declared (ClientSeeder).
            using var scope = app.Services.CreateScope();
            var demoClient = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>()
                .FindByClientIdAsync(ClientSeeder.DemoClientId).AsTask().GetAwaiter().GetResult() is not null;
            Console.WriteLine(Describe(issuer, demoClient));
        });
        return app;
    }

    /// <summary>
    /// The banner: the issuer as clients must compare it, and the URLs below it (OpenID Connect Discovery 1.0 §4: the
    /// issuer, its trailing slash removed, then <c>/.well-known/openid-configuration</c>).
    /// </summary>
    public static string Describe(string issuer, bool demoClientExists)
    {
        var below = issuer.EndsWith('/') ? issuer : issuer + "/";
        var token = demoClientExists
            ? $"""

                  A token:   curl -s -u {ClientSeeder.DemoClientId}:<secret printed on first run> -d grant_type=client_credentials -d scope={ClientSeeder.DemoScope} {below}connect/token
                """
            : "";
        return $"""

            Identity is running.
              Issuer:    {issuer}
              Discovery: {below}.well-known/openid-configuration
              JWKS:      {below}.well-known/jwks{token}

            """;
    }
}
