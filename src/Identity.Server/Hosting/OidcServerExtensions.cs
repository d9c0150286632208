using Identity.Core.Data;
using Identity.Server.Clients;
using Identity.Server.Connect;
using Identity.Server.Connect.Replacements;
using Identity.Server.Keys;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Hosting;

public static class OidcServerExtensions
{
    /// <summary>OpenIddict server (endpoints, flows, keys from the shared key ring) and local token validation.</summary>
    public static IHostApplicationBuilder AddOidcServer(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<OidcOptions>()
            .BindConfiguration(OidcOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<OidcOptions>, OidcOptionsValidator>();
        builder.Services.AddOptions<ClientCatalogueOptions>().BindConfiguration(ClientCatalogueOptions.SectionName).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ClientCatalogueOptions>, ClientCatalogueOptionsValidator>();
        builder.Services.AddOptions<ScopeOptions>().BindConfiguration(ScopeOptions.SectionName);

        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddOptions<KeyRotationOptions>()
            .BindConfiguration(KeyRotationOptions.SectionName)
            .ValidateDataAnnotations()
            .Validate(o => o.PublishAhead < o.RotationPeriod, "Keys:PublishAhead must be shorter than Keys:RotationPeriod.")
            .Validate(o => o.PublishAhead >= 2 * o.CheckInterval,
                "Keys:PublishAhead must be at least twice Keys:CheckInterval, so that every replica loads a new key before it signs.")
            .ValidateOnStart();
        builder.Services.AddSingleton<SigningKeyMaterial>();
        builder.Services.AddSingleton<SigningKeyStore>();
        builder.Services.AddSingleton<SigningKeyRing>();
        builder.Services.AddHostedService<KeyRotationService>();
        builder.Services.AddSingleton<ClientApplicationCache>();
        builder.Services.AddSingleton<ScopeCatalog>();
        builder.Services.AddSingleton<ClientTokenRateLimiter>();
        builder.Services.AddSingleton<ClientRefusals>();
        builder.Services.AddScoped<ClientSeeder>();
        builder.Services.AddAuthorization();
        builder.Services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>, ServerOptionsSetup>();

        builder.Services.AddOpenIddict()
            .AddCore(core =>
            {
                core.UseEntityFrameworkCore().UseDbContext<AuthorityDbContext>();
                core.ReplaceApplicationManager<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication, ClientApplicationManager>();
                core.ReplaceTokenManager<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken, TokenChainManager>();
                // OpenIddict's entity caches last one request and cost a MemoryCache each per request; the lookups they
                // would save are answered by CodeIssuanceBatch, ClientApplicationManager and ScopeCatalog (decision 0099).
                core.DisableEntityCaching();
            })
            .AddServer(server =>
            {
                server.SetAuthorizationEndpointUris("connect/authorize")
                    .SetTokenEndpointUris("connect/token")
                    .SetIntrospectionEndpointUris("connect/introspect")
                    .SetRevocationEndpointUris("connect/revoke")
                    .SetUserInfoEndpointUris("connect/userinfo")
                    .SetEndSessionEndpointUris("connect/endsession")
                    .SetJsonWebKeySetEndpointUris(".well-known/jwks");

                // Client credentials now; the interactive flows are wired in with the sign-in UI.
                server.AllowClientCredentialsFlow()
                    .AllowAuthorizationCodeFlow()
                    .AllowRefreshTokenFlow()
                    .RequireProofKeyForCodeExchange();

                server.RegisterScopes(Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.OfflineAccess);

                // Access tokens are signed, not encrypted, JWTs (RFC 9068) so regional services validate them from the JWKS.
                server.DisableAccessTokenEncryption();

                // Scopes are validated against a cached catalogue (ValidateRequestedScopes), not one query per request.
                server.DisableScopeValidation();

                // Identity's handlers, one list per endpoint (Connect/ProtocolPipeline).
                server.AddProtocolPipeline();

                var aspNetCore = server.UseAspNetCore()
                    .SuppressJsonResponseIndentation() // ~7.5 % of the bytes allocated per token went to indentation
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough();
                if (builder.Configuration.GetValue<bool>($"{OidcOptions.SectionName}:{nameof(OidcOptions.AllowInsecureHttp)}"))
                {
                    aspNetCore.DisableTransportSecurityRequirement();
                }
            })
            .AddValidation(validation =>
            {
                validation.UseLocalServer();
                validation.UseAspNetCore();
                validation.AddProtocolPipeline();
            });

        // Same handlers and filters as OpenIddict's dispatcher, indexed by event type (see IndexedServerDispatcher).
        var services = builder.Services;
        builder.Services.AddSingleton(provider => new ServerHandlerIndex(provider, services));
        builder.Services.Replace(ServiceDescriptor.Scoped<IOpenIddictServerDispatcher, IndexedServerDispatcher>());

        // With entity caching disabled the managers never call their cache: one that holds nothing, without a MemoryCache.
        builder.Services.Replace(ServiceDescriptor.Scoped(typeof(OpenIddict.Abstractions.IOpenIddictApplicationCache<>), typeof(UncachedApplications<>)));
        builder.Services.Replace(ServiceDescriptor.Scoped(typeof(OpenIddict.Abstractions.IOpenIddictAuthorizationCache<>), typeof(UncachedAuthorizations<>)));
        builder.Services.Replace(ServiceDescriptor.Scoped(typeof(OpenIddict.Abstractions.IOpenIddictScopeCache<>), typeof(UncachedScopes<>)));
        builder.Services.Replace(ServiceDescriptor.Scoped(typeof(OpenIddict.Abstractions.IOpenIddictTokenCache<>), typeof(UncachedTokens<>)));

        // The authorization endpoint writes the code's authorization and token entry in one round trip (CodeIssuanceBatch).
        builder.Services.AddScoped<CodeIssuanceBatch>();
        builder.Services.Replace(ServiceDescriptor.Scoped<
            OpenIddict.Abstractions.IOpenIddictAuthorizationStore<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreAuthorization>,
            BatchedAuthorizationStore>());
        builder.Services.Replace(ServiceDescriptor.Scoped<
            OpenIddict.Abstractions.IOpenIddictTokenStore<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreToken>,
            BatchedTokenStore>());

        return builder;
    }

    /// <summary>Feeds OpenIddict the keys, lifetimes and issuer from our own options.</summary>
    private sealed class ServerOptionsSetup(SigningKeyRing keys, IOptions<OidcOptions> oidc) : IConfigureOptions<OpenIddictServerOptions>
    {
        public void Configure(OpenIddictServerOptions options)
        {
            var settings = oidc.Value;
            options.Issuer = settings.Issuer;
            options.AccessTokenLifetime = settings.AccessTokenLifetime;
            options.IdentityTokenLifetime = settings.IdentityTokenLifetime;
            options.AuthorizationCodeLifetime = settings.AuthorizationCodeLifetime;
            options.RefreshTokenLifetime = settings.RefreshTokenLifetime;

            // PKCE: S256 only; "plain" offers no protection against a leaked authorization request (RFC 9700 §2.1.1).
            options.CodeChallengeMethods.Clear();
            options.CodeChallengeMethods.Add(CodeChallengeMethods.Sha256);

            // Codes travel in the query or a form post, never the fragment (no implicit or hybrid flows).
            options.ResponseModes.Remove(ResponseModes.Fragment);

            // OpenIddict needs keys at start; which one signs, and which ones are accepted, is then decided per token by the
            // ring (TokenSigningPolicy, KeyRingHandlers), which follows rotations while the server runs.
            var loaded = keys.Keys;
            options.SigningCredentials.Add(loaded.Es256);
            options.SigningCredentials.Add(loaded.Rs256);
            options.EncryptionCredentials.Add(loaded.Encryption);
        }
    }

    private sealed class OidcOptionsValidator(IHostEnvironment environment, IConfiguration configuration) : IValidateOptions<OidcOptions>
    {
        public ValidateOptionsResult Validate(string? name, OidcOptions options)
        {
            var failures = new List<string>();
            if (options.Issuer is null && !environment.IsDevelopment())
            {
                failures.Add("Oidc:Issuer is required outside Development (e.g. https://id.example.com/).");
            }

            // OpenIddict holds the issuer as a Uri and publishes its canonical form (discovery, every token's iss, the
            // RFC 9207 iss response parameter): "http://host:port" becomes "http://host:port/". Clients compare it as a
            // string with the issuer they were configured with (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3), so
            // an issuer that would be published otherwise than written is refused, with the spelling to use.
            var written = configuration[$"{OidcOptions.SectionName}:{nameof(OidcOptions.Issuer)}"];
            if (options.Issuer is { IsAbsoluteUri: true } parsed && written is not null && written != parsed.AbsoluteUri)
            {
                failures.Add($"Oidc:Issuer '{written}' would be published as '{parsed.AbsoluteUri}', which clients compare " +
                    $"with the issuer as a string: write Oidc:Issuer as '{parsed.AbsoluteUri}'.");
            }

            if (options.Issuer is { } issuer && (!issuer.IsAbsoluteUri || !string.IsNullOrEmpty(issuer.Query) || !string.IsNullOrEmpty(issuer.Fragment)))
            {
                // OpenID Connect Discovery 1.0 §3: an https URL with no query or fragment.
                failures.Add("Oidc:Issuer must be an absolute URL without query or fragment.");
            }

            if (options.Issuer is { Scheme: not "https" } && !options.AllowInsecureHttp)
            {
                failures.Add("Oidc:Issuer must use https unless Oidc:AllowInsecureHttp is set.");
            }

            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }
}
