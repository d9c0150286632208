using System.Globalization;
using Identity.Core.Data;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Clients;

/// <summary>
/// Applies the clients and scopes declared in configuration, idempotently: a missing entry is created,
/// a changed one updated, an unchanged one left alone (not even re-written).
/// </summary>
public sealed class ClientSeeder(
    IOpenIddictApplicationManager applications,
    IOpenIddictScopeManager scopes,
    IOptions<ClientCatalogueOptions> declaredClients,
    IOptions<ScopeOptions> declaredScopes,
    IOptions<DatabaseOptions> database,
    Connect.ScopeCatalog catalog,
    IConfiguration configuration,
    ILogger<ClientSeeder> logger)
{
    public const string DemoClientId = "demo-m2m";
    public const string DemoScope = "demo.read";
    public const string DemoResource = "urn:identity:demo-api";
    public const string RegionProperty = "identity_region";

    /// <summary>The client's refresh-token reuse leeway (<see cref="ClientDefinition.RefreshTokenReuseLeeway"/>), "c" format.</summary>
    public const string RefreshTokenReuseLeewayProperty = "identity_refresh_token_reuse_leeway";

    /// <summary>The registered token endpoint authentication method, when declared (RFC 7591 §2 metadata name).</summary>
    public const string AuthenticationMethodProperty = "token_endpoint_auth_method";

    public async Task ApplyAsync(CancellationToken cancellationToken)
    {
        var options = declaredClients.Value;
        await ApplyScopeAsync(new ScopeDefinition
        {
            Name = Hosting.AdminApiExtensions.Scope,
            DisplayName = "Administer Identity",
            Resources = [Hosting.AdminApiExtensions.Audience],
        }, cancellationToken);
        await ApplyScopeAsync(new ScopeDefinition
        {
            Name = Sync.SyncApi.Scope,
            DisplayName = "Read a region's users (resync)",
            Resources = [Sync.SyncApi.Audience],
        }, cancellationToken);
        foreach (var scope in declaredScopes.Value.Scopes)
        {
            await ApplyScopeAsync(scope, cancellationToken);
        }

        foreach (var client in options.Clients)
        {
            await ApplyClientAsync(client, ClientDefinitionRules.ResolveSecret(client), cancellationToken);
        }

        if (options.SeedDemoClient && options.Clients.Count == 0 && database.Value.Provider == DatabaseProvider.Sqlite
            && await applications.CountAsync(cancellationToken) == 0)
        {
            await SeedDemoClientAsync(cancellationToken);
        }

        // After the demo's check (which seeds only into an empty table): the admin console, always registered.
        await ApplyClientAsync(AdminConsole.ConsoleClient.Definition(AdminConsole.ConsoleClient.Origin(configuration)), null, cancellationToken);

        catalog.Invalidate();
    }

    private async Task SeedDemoClientAsync(CancellationToken cancellationToken)
    {
        await ApplyScopeAsync(new ScopeDefinition { Name = DemoScope, DisplayName = "Demo API (read)", Resources = [DemoResource] }, cancellationToken);
        var secret = ClientSecretHasher.GenerateSecret();
        await ApplyClientAsync(new ClientDefinition
        {
            ClientId = DemoClientId,
            DisplayName = "Demo machine-to-machine client",
            GrantTypes = [GrantTypes.ClientCredentials],
            Scopes = [DemoScope],
        }, secret, cancellationToken);

        // Two regional web apps (src/Identity.RegionSample on ports 7301 and 7302) for the single sign-on walk-through.
        var webSecrets = new List<(string ClientId, string Secret)>();
        foreach (var (region, port) in new[] { ("eu", 7301), ("us", 7302) })
        {
            var webSecret = ClientSecretHasher.GenerateSecret();
            var origin = $"http://127.0.0.1:{port}";
            await ApplyClientAsync(new ClientDefinition
            {
                ClientId = $"region-{region}",
                DisplayName = $"Regional app ({region})",
                GrantTypes = [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken],
                Scopes = [Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.OfflineAccess],
                RedirectUris = [new Uri(origin + "/signin-oidc")],
                PostLogoutRedirectUris = [new Uri(origin + "/signout-callback-oidc")],
            }, webSecret, cancellationToken);
            webSecrets.Add(($"region-{region}", webSecret));
        }

        // Shown once, on the console only (never through the logger): the database keeps only the hashes.
        Console.WriteLine($"""

            ==== Demo clients (shown once; only their hashes are stored) ====
              machine-to-machine  client_id={DemoClientId}  client_secret={secret}  scope={DemoScope}
              {string.Join("\n  ", webSecrets.Select(w => $"web app             client_id={w.ClientId}  client_secret={w.Secret}"))}
            ==================================================================

            """);
    }

    private async Task ApplyScopeAsync(ScopeDefinition definition, CancellationToken cancellationToken)
    {
        var descriptor = new OpenIddictScopeDescriptor { Name = definition.Name, DisplayName = definition.DisplayName };
        foreach (var resource in definition.Resources)
        {
            descriptor.Resources.Add(resource);
        }

        var existing = await scopes.FindByNameAsync(definition.Name, cancellationToken);
        if (existing is null)
        {
            await scopes.CreateAsync(descriptor, cancellationToken);
            logger.LogInformation("Created scope {Scope} from configuration", definition.Name);
            return;
        }

        var current = new OpenIddictScopeDescriptor();
        await scopes.PopulateAsync(current, existing, cancellationToken);
        if (current.DisplayName != descriptor.DisplayName || !current.Resources.SetEquals(descriptor.Resources))
        {
            await scopes.UpdateAsync(existing, descriptor, cancellationToken);
            logger.LogInformation("Updated scope {Scope} from configuration", definition.Name);
        }
    }

    private async Task ApplyClientAsync(ClientDefinition definition, string? secret, CancellationToken cancellationToken)
    {
        var desired = ToDescriptor(definition, secret);
        var existing = await applications.FindByClientIdAsync(definition.ClientId, cancellationToken);
        if (existing is null)
        {
            await applications.CreateAsync(desired, cancellationToken);
            logger.LogInformation("Created client {ClientId} from configuration", definition.ClientId);
            return;
        }

        var current = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(current, existing, cancellationToken);
        var secretUnchanged = secret is null
            ? current.ClientSecret is null
            : await applications.ValidateClientSecretAsync(existing, secret, cancellationToken);

        if (secretUnchanged && SameDeclaration(current, desired))
        {
            return;
        }

        if (secret is not null && !secretUnchanged)
        {
            // A new secret: OpenIddict hashes it on the way in.
            await applications.UpdateAsync(existing, desired, cancellationToken);
        }
        else
        {
            // Keep the stored hash (or drop it when the secret reference was removed) without re-hashing.
            desired.ClientSecret = secretUnchanged ? current.ClientSecret : null;
            await applications.PopulateAsync(existing, desired, cancellationToken);
            await applications.UpdateAsync(existing, cancellationToken);
        }

        logger.LogInformation("Updated client {ClientId} from configuration", definition.ClientId);
    }

    private static bool SameDeclaration(OpenIddictApplicationDescriptor a, OpenIddictApplicationDescriptor b) =>
        a.ClientType == b.ClientType
        && a.ConsentType == b.ConsentType
        && a.DisplayName == b.DisplayName
        && a.Permissions.SetEquals(b.Permissions)
        && a.Requirements.SetEquals(b.Requirements)
        && a.RedirectUris.SetEquals(b.RedirectUris)
        && a.PostLogoutRedirectUris.SetEquals(b.PostLogoutRedirectUris)
        && a.Settings.Count == b.Settings.Count && a.Settings.All(s => b.Settings.TryGetValue(s.Key, out var v) && v == s.Value)
        && JwksEquals(a.JsonWebKeySet, b.JsonWebKeySet)
        && a.Properties.Count == b.Properties.Count
        && a.Properties.All(p => b.Properties.TryGetValue(p.Key, out var v) && v.GetRawText() == p.Value.GetRawText());

    private static bool JwksEquals(Microsoft.IdentityModel.Tokens.JsonWebKeySet? a, Microsoft.IdentityModel.Tokens.JsonWebKeySet? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        static string Fingerprint(Microsoft.IdentityModel.Tokens.JsonWebKeySet set) => string.Join('|',
            set.Keys.Select(k => $"{k.Kid}:{k.Kty}:{k.N}:{k.E}:{k.X}:{k.Y}:{k.Crv}").Order(StringComparer.Ordinal));
        return Fingerprint(a) == Fingerprint(b);
    }

    /// <summary>Turns a declaration into OpenIddict's descriptor: permissions, requirements and settings.</summary>
    public static OpenIddictApplicationDescriptor ToDescriptor(ClientDefinition definition, string? secret)
    {
        var jwks = ClientDefinitionRules.ResolveJwks(definition);
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = definition.ClientId,
            DisplayName = definition.DisplayName,
            ClientSecret = secret,
            JsonWebKeySet = jwks,
            ClientType = secret is not null || jwks is not null || ClientCertificateIdentity.From(definition) is not null
                ? ClientTypes.Confidential : ClientTypes.Public,
            ConsentType = definition.FirstParty ? ConsentTypes.Implicit : ConsentTypes.Explicit,
        };

        descriptor.Permissions.UnionWith([Permissions.Endpoints.Token, Permissions.Endpoints.Revocation]);
        if (descriptor.ClientType == ClientTypes.Confidential)
        {
            descriptor.Permissions.Add(Permissions.Endpoints.Introspection);
        }

        foreach (var grant in definition.GrantTypes)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.GrantType + grant);
        }

        if (definition.GrantTypes.Contains(GrantTypes.AuthorizationCode))
        {
            descriptor.Permissions.UnionWith([Permissions.Endpoints.Authorization, Permissions.Endpoints.EndSession, Permissions.ResponseTypes.Code]);
            // PKCE for every client, confidential ones included (RFC 9700 §2.1.1).
            descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
        }

        foreach (var scope in definition.Scopes.Where(s => s != Scopes.OpenId))
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }

        descriptor.RedirectUris.UnionWith(definition.RedirectUris);
        descriptor.PostLogoutRedirectUris.UnionWith(definition.PostLogoutRedirectUris);

        if (definition.Region is { Length: > 0 } region)
        {
            descriptor.Properties[RegionProperty] = System.Text.Json.JsonSerializer.SerializeToElement(region);
        }

        if (definition.TokenEndpointAuthMethod is { } method)
        {
            descriptor.Properties[AuthenticationMethodProperty] = System.Text.Json.JsonSerializer.SerializeToElement(method);
        }

        if (ClientCertificateIdentity.From(definition) is { } certificate)
        {
            descriptor.Properties[ClientCertificateIdentity.Property] = certificate.ToJson();
        }

        if (definition.PlatformAdmin)
        {
            descriptor.Properties[Admin.AdminActor.PlatformAdminProperty] = System.Text.Json.JsonSerializer.SerializeToElement(true);
        }

        if (ClientAccessPolicy.From(definition) is { } access)
        {
            descriptor.Properties[ClientAccessPolicy.Property] = access.ToJson();
        }

        if (definition.RefreshTokenReuseLeeway is { } leeway && leeway > TimeSpan.Zero)
        {
            descriptor.Properties[RefreshTokenReuseLeewayProperty] =
                System.Text.Json.JsonSerializer.SerializeToElement(leeway.ToString("c", CultureInfo.InvariantCulture));
        }

        if (definition.AccessTokenLifetime is { } lifetime)
        {
            descriptor.Settings[Settings.TokenLifetimes.AccessToken] = lifetime.ToString("c", CultureInfo.InvariantCulture);
        }

        return descriptor;
    }
}
