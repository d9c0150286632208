using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// OpenIddict's <c>PrepareAccessTokenPrincipal</c> and <c>PrepareIdentityTokenPrincipal</c> (<c>ProcessSignIn</c>), with
/// the same rules, in the same order, but a cheaper copy of the sign-in's principal (decision 0103). OpenIddict clones
/// the whole principal for each token (every claim and its properties), then drops the claims the token must not
/// carry, parsing each claim's destinations from their JSON on the way, and then removes the destinations from every
/// claim it kept (which gives a claim without properties an empty dictionary). Here only the kept claims are copied,
/// without their destinations, and each distinct destinations string is parsed once per process.
/// </summary>
public static class TokenPrincipals
{
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Descriptors { get; } =
    [
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .AddFilter<OpenIddictServerHandlerFilters.RequireAccessTokenGenerated>()
            .UseScopedHandler<PrepareAccessTokenClaims>()
            // In place of OpenIddict's handler (removed by ProtocolPipeline.AddProtocolPipeline).
            .SetOrder(OpenIddictServerHandlers.PrepareAccessTokenPrincipal.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
            .AddFilter<OpenIddictServerHandlerFilters.RequireIdentityTokenGenerated>()
            .UseScopedHandler<PrepareIdentityTokenClaims>()
            .SetOrder(OpenIddictServerHandlers.PrepareIdentityTokenPrincipal.Descriptor.Order)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build(),
    ];

    /// <summary>The OpenIddict handlers <see cref="Descriptors"/> stand in for.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Replaced { get; } =
    [
        OpenIddictServerHandlers.PrepareAccessTokenPrincipal.Descriptor,
        OpenIddictServerHandlers.PrepareIdentityTokenPrincipal.Descriptor,
    ];

    /// <summary>
    /// OpenIddict 7.8's claim rule for access and ID tokens: the subject, the authorization id (and, for access tokens,
    /// presenters and scopes) always; never the claims describing the token itself, nor any other private claim;
    /// any other claim only if it names the token's destination.
    /// </summary>
    internal static bool Keeps(Claim claim, string destination)
    {
        var type = claim.Type;
        if (Is(type, Claims.Subject) || Is(type, Claims.Private.AuthorizationId)
            || destination == Destinations.AccessToken && (Is(type, Claims.Private.Presenter) || Is(type, Claims.Private.Scope)))
        {
            return true;
        }

        if (Is(type, Claims.JwtId) || Is(type, Claims.Private.TokenId) || Is(type, Claims.ExpiresAt) || Is(type, Claims.IssuedAt)
            || Is(type, Claims.NotBefore) || Is(type, Claims.Confirmation) || type.StartsWith("oi_", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        return DestinationsOf(claim).Contains(destination, StringComparer.OrdinalIgnoreCase);

        static bool Is(string type, string name) => string.Equals(type, name, StringComparison.OrdinalIgnoreCase);
    }

    private const string DestinationsProperty = ".destinations";

    // Each distinct destinations JSON, parsed once (Identity writes three); bounded, in case a principal ever carries
    // many distinct ones: past the bound a string is parsed each time, as OpenIddict does.
    private static readonly ConcurrentDictionary<string, ImmutableArray<string>> ParsedDestinations = new(StringComparer.Ordinal);

    private static ImmutableArray<string> DestinationsOf(Claim claim)
    {
        if (!claim.Properties.TryGetValue(DestinationsProperty, out var json) || string.IsNullOrEmpty(json))
        {
            return [];
        }

        if (ParsedDestinations.TryGetValue(json, out var destinations))
        {
            return destinations;
        }

        destinations = claim.GetDestinations();
        if (ParsedDestinations.Count < 64)
        {
            ParsedDestinations.TryAdd(json, destinations);
        }

        return destinations;
    }

    /// <summary>
    /// What OpenIddict's <c>Clone</c> with <see cref="Keeps"/>, followed by the removal of every kept claim's
    /// destinations, returns: each identity (and actor) with its settings and the kept claims, in order.
    /// </summary>
    internal static ClaimsPrincipal Copy(ClaimsPrincipal source, string destination)
    {
        if (source.Identities.Any(identity => identity.GetType() != typeof(ClaimsIdentity)))
        {
            // A derived identity (one read from a token, say) clones into its own type: OpenIddict's own way, then.
            var clone = source.Clone(claim => Keeps(claim, destination));
            foreach (var claim in clone.Claims)
            {
                claim.Properties.Remove(DestinationsProperty);
            }

            return clone;
        }

        var copy = new ClaimsPrincipal();
        foreach (var identity in source.Identities)
        {
            copy.AddIdentity(Copy(identity, destination));
        }

        return copy;
    }

    private static ClaimsIdentity Copy(ClaimsIdentity source, string destination)
    {
        var copy = new ClaimsIdentity(source.AuthenticationType, source.NameClaimType, source.RoleClaimType)
        {
            Label = source.Label,
            BootstrapContext = source.BootstrapContext,
        };
        foreach (var claim in source.Claims)
        {
            if (Keeps(claim, destination))
            {
                copy.AddClaim(WithoutDestinations(claim, copy));
            }
        }

        if (source.Actor is { } actor)
        {
            copy.Actor = Copy(actor, destination);
        }

        return copy;
    }

    private static Claim WithoutDestinations(Claim claim, ClaimsIdentity subject)
    {
        var copy = new Claim(claim.Type, claim.Value, claim.ValueType, claim.Issuer, claim.OriginalIssuer, subject);
        foreach (var (key, value) in claim.Properties)
        {
            if (key != DestinationsProperty)
            {
                copy.Properties[key] = value;
            }
        }

        return copy;
    }

    /// <summary>
    /// What both token principals begin with, in OpenIddict's order: the copy of the claims for the token's destination,
    /// its creation date, its expiry from its lifetime, and its issuer.
    /// </summary>
    internal static async ValueTask<ClaimsPrincipal> StartAsync(ProcessSignInContext context, IOpenIddictApplicationManager applications,
        string destination, TimeSpan? own, string setting, TimeSpan? serverDefault)
    {
        var principal = Copy(context.Principal!, destination);
        principal.SetCreationDate(context.Options.TimeProvider.GetUtcNow());
        if (await LifetimeAsync(context, applications, own, setting, serverDefault) is { } lifetime)
        {
            principal.SetExpirationDate(principal.GetCreationDate() + lifetime);
        }

        principal.SetClaim(Claims.Private.Issuer, Issuer(context));
        return principal;
    }

    /// <summary>The token's lifetime: the principal's own, else the client's setting, else the server's (as OpenIddict).</summary>
    private static async ValueTask<TimeSpan?> LifetimeAsync(ProcessSignInContext context, IOpenIddictApplicationManager? applications,
        TimeSpan? own, string setting, TimeSpan? serverDefault)
    {
        if (own is null && !context.Options.EnableDegradedMode && !string.IsNullOrEmpty(context.ClientId))
        {
            var application = await (applications ?? throw new InvalidOperationException("No application manager is registered."))
                .FindByClientIdAsync(context.ClientId) ?? throw new InvalidOperationException("The client application cannot be found.");
            if ((await applications.GetSettingsAsync(application)).TryGetValue(setting, out var value)
                && TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var lifetime))
            {
                own = lifetime;
            }
        }

        return own ?? serverDefault;
    }

    /// <summary>The issuer the token names: the configured one, else the request's base URI (OpenIddict refuses a relative one).</summary>
    private static string Issuer(ProcessSignInContext context) =>
        (context.Options.Issuer ?? context.BaseUri) is { IsAbsoluteUri: true } issuer
            ? issuer.AbsoluteUri
            : throw new InvalidOperationException("The issuer of the token could not be determined.");
}

/// <summary>OpenIddict's <c>PrepareAccessTokenPrincipal</c>, with <see cref="TokenPrincipals"/>' copy.</summary>
public sealed class PrepareAccessTokenClaims(IOpenIddictApplicationManager applications) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var principal = await TokenPrincipals.StartAsync(context, applications, Destinations.AccessToken,
            context.Principal!.GetAccessTokenLifetime(), Settings.TokenLifetimes.AccessToken, context.Options.AccessTokenLifetime);
        principal.SetAudiences(context.Principal!.GetResources());
        principal.SetClaim(Claims.ClientId, context.ClientId);

        // RFC 6749 §6: a refresh request may narrow the scopes; the access token carries only those it asked for.
        if (context.EndpointType is OpenIddictServerEndpointType.Token && context.Request is { } request
            && request.IsRefreshTokenGrantType() && !string.IsNullOrEmpty(request.Scope))
        {
            principal.SetScopes(request.GetScopes().Intersect(context.Principal!.GetScopes()));
        }

        // RFC 8705 §3: a certificate-bound access token carries the certificate's SHA-256 thumbprint.
        if (context.Options.UseClientCertificateBoundAccessTokens && context.Transaction.RemoteCertificate is { } certificate)
        {
            principal.SetClaim(Claims.Confirmation, new JsonObject
            {
                [JsonWebKeyParameterNames.X5tS256] = Base64UrlEncoder.Encode(SHA256.HashData(certificate.RawData)),
            });
        }

        context.AccessTokenPrincipal = principal;
    }
}

/// <summary>OpenIddict's <c>PrepareIdentityTokenPrincipal</c>, with <see cref="TokenPrincipals"/>' copy.</summary>
public sealed class PrepareIdentityTokenClaims(IOpenIddictApplicationManager applications) : IOpenIddictServerHandler<ProcessSignInContext>
{
    public async ValueTask HandleAsync(ProcessSignInContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var principal = await TokenPrincipals.StartAsync(context, applications, Destinations.IdentityToken,
            context.Principal!.GetIdentityTokenLifetime(), Settings.TokenLifetimes.IdentityToken, context.Options.IdentityTokenLifetime);

        // OpenID Connect Core §2: the ID token's audience is the client, which is also its authorized party.
        if (!string.IsNullOrEmpty(context.ClientId))
        {
            principal.SetAudiences(context.ClientId);
            principal.SetClaim(Claims.AuthorizedParty, context.ClientId);
        }

        // OpenID Connect Core §3.1.3.6: the nonce of the authorization request, kept in the code for the token endpoint.
        principal.SetClaim(Claims.Nonce, context.EndpointType switch
        {
            OpenIddictServerEndpointType.Authorization or OpenIddictServerEndpointType.PushedAuthorization => context.Request?.Nonce,
            OpenIddictServerEndpointType.Token => context.Principal!.GetClaim(Claims.Private.Nonce),
            _ => null,
        });

        context.IdentityTokenPrincipal = principal;
    }
}
