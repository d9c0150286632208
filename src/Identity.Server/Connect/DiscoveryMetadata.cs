using System.Collections.Immutable;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Makes the discovery document say exactly what the server does (OpenID Connect Discovery 1.0 §3):
/// ID tokens are only ever signed RS256 (<see cref="TokenSigningPolicy"/>), account selection is not offered, every
/// claim an ID token or the userinfo response can carry is listed in <c>claims_supported</c>, and the authentication
/// context classes sessions are given (<see cref="SessionClaims"/>) in <c>acr_values_supported</c>.
/// </summary>
public sealed class DiscoveryMetadata : IOpenIddictServerHandler<HandleConfigurationRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<HandleConfigurationRequestContext>()
            .UseSingletonHandler<DiscoveryMetadata>()
            .SetOrder(OpenIddictServerHandlers.Discovery.AttachAdditionalMetadata.Descriptor.Order + 1_000)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    /// <summary>
    /// The claims of <see cref="UserPrincipalFactory"/> (ID token and userinfo response), with the protocol claims OpenIddict adds to an ID token (Core §2, §3.1.3.6). OpenIddict lists iss, sub, aud, exp
    /// and iat itself.
    /// </summary>
    public static readonly IReadOnlyList<string> IssuedClaims =
    [
        Claims.AuthorizedParty, Claims.Nonce, Claims.AccessTokenHash,
        SessionClaims.SessionId, SessionClaims.AuthTime, SessionClaims.Methods, SessionClaims.ContextClass,
        Claims.Name, Claims.PreferredUsername, Claims.Email, Claims.EmailVerified, UserPrincipalFactory.AccountClaim,
    ];

    private static readonly ImmutableArray<string?> AcrValues = [SessionClaims.AcrPassword, SessionClaims.AcrMultiFactor];

    public ValueTask HandleAsync(HandleConfigurationRequestContext context)
    {
        context.IdTokenSigningAlgorithms.Clear();
        context.IdTokenSigningAlgorithms.Add(Algorithms.RsaSha256);
        context.PromptValues.Remove(PromptValues.SelectAccount);
        context.Claims.UnionWith(IssuedClaims);
        context.Metadata[Metadata.AcrValuesSupported] = AcrValues;
        return ValueTask.CompletedTask;
    }
}
