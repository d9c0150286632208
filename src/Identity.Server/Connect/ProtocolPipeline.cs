using Identity.Server.Audit;
using Identity.Server.Connect.Replacements;
using Identity.Server.Keys;
using OpenIddict.Server;
using OpenIddict.Validation;

namespace Identity.Server.Connect;

/// <summary>
/// Every handler Identity adds to OpenIddict's pipelines, one list per endpoint, each list in the order its handlers run.
/// A handler's descriptor places it relative to the OpenIddict handler it must follow or precede (its comment says which
/// and why), never at an order of its own: an OpenIddict upgrade that moves its handlers moves these with them, and no two
/// of these share an order on the same event. Registered once, here (<see cref="AddProtocolPipeline"/>), with the filters
/// the descriptors name; the mTLS handlers by <c>Hosting/MutualTlsExtensions</c> when the mTLS endpoint is on.
/// The userinfo and end-session endpoints have no handler of ours: OpenIddict validates the request and passes it through
/// to Identity's own code (<c>Hosting/SignInExtensions.MapSignIn</c>, <c>Account/EndSession</c>); so does the authorization
/// endpoint, after the handlers below (<c>Account/Authorize</c>).
/// </summary>
public static class ProtocolPipeline
{
    /// <summary>Token endpoint (RFC 6749 §3.2): the grants Identity issues tokens for, and how a refusal is answered.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Token { get; } =
    [
        // Validate: after OpenIddict's client authentication, before its scope permission check.
        ValidateRequestedScopes.Descriptor,
        // Handle: after OpenIddict attaches the redeemed code's or refresh token's principal; one grant each.
        ClientCredentialsSignIn.Descriptor,
        UserTokenSignIn.Descriptor,
        // Apply (errors): before OpenIddict normalises the error (invalid_token becomes invalid_grant for a code or refresh
        // grant); the audit after Identity's own mappings.
        ClientAssertionErrors.Descriptor,
        TokenFailureAudit.Descriptor,
        // Apply: after OpenIddict's normalisation of the error, the outcome as the client sees it, counted.
        TokenOutcomeMetrics.Descriptor,
    ];

    /// <summary>
    /// The endpoints a client calls itself (token, introspection, revocation): its access policy, right after OpenIddict
    /// authenticated it, and the 429 of a token request over its budget, after OpenIddict set the status code.
    /// </summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> ClientEndpoints { get; } = [.. ClientAccessEnforcement.Descriptors];

    /// <summary>Certificate client authentication (RFC 8705), registered only when the mTLS endpoint is on.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> MutualTls { get; } =
    [
        // Validate (token, introspection, revocation): before OpenIddict's check that client credentials were sent (the
        // certificate may be missing).
        .. MutualTlsClientErrors.Descriptors,
        // Authenticate (token, introspection, revocation): once OpenIddict knows the client, before it checks a secret.
        RegisteredCertificateMethod.Descriptor,
        // Apply (errors; token, introspection, revocation): before ClientAssertionErrors (Token), OpenIddict's
        // normalisation of the error and the audit.
        .. ClientCertificateRefusals.Descriptors,
    ];

    /// <summary>Authorization endpoint (RFC 6749 §3.1): requests OpenIddict would accept but could not answer.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Authorization { get; } =
    [
        // Handle: first, before OpenIddict attaches the id_token_hint's principal and passes the request through.
        RejectRepeatedResponseTypes.Descriptor,
        // Apply: after OpenIddict infers the response mode (and found none).
        DefaultToQueryResponseMode.Descriptor,
    ];

    /// <summary>Discovery (OpenID Connect Discovery 1.0 §3) and the JWKS: what the server really does, and the ring's keys.</summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Discovery { get; } =
    [
        DiscoveryMetadata.Descriptor,
        KeyRingHandlers.Jwks,
    ];

    /// <summary>
    /// Tokens themselves, at whichever endpoint Identity issues or reads one (codes, refresh tokens, access and ID tokens,
    /// client assertions, <c>id_token_hint</c>, tokens to introspect or revoke).
    /// </summary>
    public static IReadOnlyList<OpenIddictServerHandlerDescriptor> Tokens { get; } =
    [
        // Generate: right after OpenIddict picks its first key, the key ring's key and whether an entry is stored.
        TokenSigningPolicy.Descriptor,
        // Generate: in place of OpenIddict's AttachTokenSubject (removed in AddProtocolPipeline), the payload's claims.
        UncopiedTokenSubject.Descriptor,
        // Validate: the ring's live keys, then the client assertion's type rule, once OpenIddict resolved the parameters.
        KeyRingHandlers.ServerValidation,
        UntypedClientAssertions.Descriptor,
        // Validate: just before OpenIddict reads a code's entry at the token endpoint, that the read redeems it (PostgreSQL).
        CodeRedemptionOnRead.Descriptor,
        // Validate: a refresh token's per-client reuse leeway before OpenIddict's token entry check, and the authorization
        // of a token without an entry after it.
        RefreshTokenReuse.Descriptor,
        UnstoredTokenAuthorization.ServerDescriptor,
        // Validate: an unstored token (client credentials) of a client that was deleted since.
        DeletedClientTokens.Descriptor,
    ];

    /// <summary>The access tokens of Identity's own APIs (admin, sync), validated in process.</summary>
    public static IReadOnlyList<OpenIddictValidationHandlerDescriptor> Validation { get; } =
    [
        KeyRingHandlers.LocalValidation,
        UnstoredTokenAuthorization.ValidationDescriptor,
    ];

    /// <summary>
    /// Registers every list but <see cref="MutualTls"/>, and the filters their descriptors name (singletons), in place of
    /// the OpenIddict handlers a replacement of <see cref="Tokens"/> stands for.
    /// </summary>
    public static OpenIddictServerBuilder AddProtocolPipeline(this OpenIddictServerBuilder server)
    {
        server.Services.AddSingleton<RequireClientEndpoint>();
        server.Services.AddSingleton<RequireUserGrant>();
        server.Services.AddSingleton<RequireStoredRefreshToken>();
        server.Services.AddSingleton<RequireErrorResponse>();
        server.RemoveEventHandler(OpenIddictServerHandlers.Protection.AttachTokenSubject.Descriptor);
        return server.AddEventHandlers(Token, ClientEndpoints, Authorization, Discovery, Tokens);
    }

    public static OpenIddictServerBuilder AddEventHandlers(
        this OpenIddictServerBuilder server, params IReadOnlyList<OpenIddictServerHandlerDescriptor>[] lists)
    {
        foreach (var descriptor in lists.SelectMany(list => list))
        {
            server.AddEventHandler(descriptor);
        }

        return server;
    }

    public static OpenIddictValidationBuilder AddProtocolPipeline(this OpenIddictValidationBuilder validation)
    {
        foreach (var descriptor in Validation)
        {
            validation.AddEventHandler(descriptor);
        }

        return validation;
    }
}
