using Identity.Server.Keys;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Chooses, per token, the signing key and whether a database entry is written:
/// <list type="bullet">
/// <item>ID tokens are signed RS256, the algorithm OpenID Connect Core 1.0 §15.1 obliges every relying party to accept;</item>
/// <item>access tokens are signed with <see cref="OidcOptions.AccessTokenAlgorithm"/> (ES256 by default: ~18 µs
/// against ~225 µs for RS256 on the reference machine);</item>
/// <item>client-credentials access tokens are not stored: no database write per token. They are short-lived
/// JWTs that resource servers validate from the JWKS alone; revoking one is not possible, disabling the client
/// stops new ones (see README, "Token storage"), deleting it also makes them inactive at Identity's introspection
/// (<see cref="DeletedClientTokens"/>).</item>
/// <item>access and ID tokens issued from a user's code or refresh token are not stored either (two fewer writes per
/// redemption): each carries the id of the code's ad-hoc authorization, and OpenIddict checks that entry whenever
/// Identity validates them (introspection, userinfo, <c>id_token_hint</c>). A replayed code or a reused refresh token
/// revokes that authorization (<see cref="Replacements.TokenChainManager"/>), so those tokens stop being accepted with it
/// (RFC 6749 §4.1.2, §10.5).</item>
/// </list>
/// Every other token (codes, refresh tokens: read by Identity alone) is signed HS256 with the key derived from the active
/// A256KW key (decision 0090: about 80 µs of ES256 signing and verification less per code) and, when OpenIddict encrypts
/// it, encrypted with that A256KW key. The keys come from the <see cref="SigningKeyRing"/>, which rotates them while the
/// server runs, not from OpenIddict's options, which hold the keys of the moment the server started.
/// Runs right after OpenIddict's <c>AttachSecurityCredentials</c>, which takes the first key for every token type.
/// </summary>
public sealed class TokenSigningPolicy(SigningKeyRing keys, IOptionsMonitor<OidcOptions> options)
    : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<GenerateTokenContext>()
            .UseSingletonHandler<TokenSigningPolicy>()
            .SetOrder(OpenIddictServerHandlers.Protection.AttachSecurityCredentials.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        var active = keys.Keys;
        switch (context.TokenType)
        {
            case TokenTypeIdentifiers.IdentityToken:
                context.SigningCredentials = active.Rs256;
                if (context.Principal?.GetAuthorizationId() is not null)
                {
                    context.CreateTokenEntry = false;
                }

                break;

            case TokenTypeIdentifiers.AccessToken:
                context.SigningCredentials = options.CurrentValue.AccessTokenAlgorithm == "RS256"
                    ? active.Rs256
                    : active.Es256;
                if (context.Request?.IsClientCredentialsGrantType() == true || context.Principal?.GetAuthorizationId() is not null)
                {
                    context.CreateTokenEntry = false;
                    context.PersistTokenPayload = false;
                    context.IsReferenceToken = false;
                }

                break;

            default:
                context.SigningCredentials = active.Internal;
                if (context.EncryptionCredentials is not null)
                {
                    context.EncryptionCredentials = active.Encryption;
                }

                break;
        }

        return ValueTask.CompletedTask;
    }
}
