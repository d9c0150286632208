using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect.Replacements;

/// <summary>The redemption of an authorization code by the read of its entry: the client it must be issued to, and the time.</summary>
internal sealed record CodeRedemption(string ApplicationId, DateTime Now);

/// <summary>
/// At the token endpoint's <c>authorization_code</c> grant, tells the token store that the read of the code's entry is
/// its redemption (<see cref="CodeIssuanceBatch.RedeemOnRead"/>): on PostgreSQL one statement reads and redeems it,
/// where OpenIddict reads it here and redeems it after its checks (<c>TryRedeemAsync</c>), two statements (decision 0101).
/// <para>
/// Runs just before OpenIddict's <c>ValidateReferenceTokenIdentifier</c>, the read. OpenIddict 7.8 validates the code
/// (<c>ValidateAuthorizationCode</c>) after it authenticated the client (assertion, secret, certificate) and Identity
/// enforced the client's access policy: a request that fails client authentication never reaches this, and never
/// consumes a code. One from the code's own client that then fails the code's checks in its payload (redirect_uri,
/// PKCE verifier) has consumed it: a later redemption is a replay (RFC 6749 §4.1.2).
/// </para>
/// </summary>
public sealed class CodeRedemptionOnRead(CodeIssuanceBatch batch, IOpenIddictApplicationManager applications)
    : IOpenIddictServerHandler<ValidateTokenContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .UseScopedHandler<CodeRedemptionOnRead>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateReferenceTokenIdentifier.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        if (context.EndpointType != OpenIddictServerEndpointType.Token || context.Request?.IsAuthorizationCodeGrantType() is not true
            || context.ValidTokenTypes.Count != 1 || !context.ValidTokenTypes.Contains(TokenTypeIdentifiers.Private.AuthorizationCode)
            || string.IsNullOrEmpty(context.Request.ClientId))
        {
            return;
        }

        // Cached (ClientApplicationManager): no statement. The code's entry names the client by this id.
        if (await applications.FindByClientIdAsync(context.Request.ClientId, context.CancellationToken) is { } application
            && await applications.GetIdAsync(application, context.CancellationToken) is { Length: > 0 } id)
        {
            batch.RedeemOnRead(new CodeRedemption(id, context.Options.TimeProvider.GetUtcNow().UtcDateTime));
        }
    }
}
