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
/// stops new ones (see README, "Token storage").</item>
/// </list>
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
        switch (context.TokenType)
        {
            case TokenTypeIdentifiers.IdentityToken:
                context.SigningCredentials = keys.Keys.Rs256;
                break;

            case TokenTypeIdentifiers.AccessToken:
                context.SigningCredentials = options.CurrentValue.AccessTokenAlgorithm == "RS256"
                    ? keys.Keys.Rs256
                    : keys.Keys.Es256;
                if (context.Request?.IsClientCredentialsGrantType() == true)
                {
                    context.CreateTokenEntry = false;
                    context.PersistTokenPayload = false;
                    context.IsReferenceToken = false;
                }

                break;
        }

        return ValueTask.CompletedTask;
    }
}
