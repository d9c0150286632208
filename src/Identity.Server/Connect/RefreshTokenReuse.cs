using System.Globalization;
using System.Text.Json;
using Identity.Server.Clients;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect;

/// <summary>
/// Refresh-token reuse detection with each client's own leeway (RFC 9700 §4.14.2). A refresh token presented again
/// after it was rotated is reuse: refused, and its whole family revoked (the authorization, every token of it, the
/// branch the legitimate client holds included), unless the client was given a leeway
/// (<see cref="ClientDefinition.RefreshTokenReuseLeeway"/>; none by default, confidential clients only) and the token was
/// rotated less than that long ago.
/// <para>
/// OpenIddict has one leeway for every client. It is set to <see cref="MaxLeeway"/>, and this handler, just before
/// OpenIddict's own token-entry check, refuses every reuse outside the presenting client's leeway the way OpenIddict
/// does (same error, same revocation through <see cref="Replacements.TokenChainManager"/>); a reuse within it is left to OpenIddict,
/// which accepts it.
/// </para>
/// </summary>
public sealed class RefreshTokenReuse(IOpenIddictTokenManager tokens, IOpenIddictApplicationManager applications, ILogger<RefreshTokenReuse> logger)
    : IOpenIddictServerHandler<ValidateTokenContext>
{
    /// <summary>The longest leeway a client may be given, and OpenIddict's own.</summary>
    public static readonly TimeSpan MaxLeeway = TimeSpan.FromMinutes(1);

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenContext>()
            .AddFilter<RequireStoredRefreshToken>()
            .UseScopedHandler<RefreshTokenReuse>()
            .SetOrder(OpenIddictServerHandlers.Protection.ValidateTokenEntry.Descriptor.Order - 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenContext context)
    {
        var token = await tokens.FindByIdAsync(context.TokenId!, context.CancellationToken);
        if (token is null || !await tokens.HasStatusAsync(token, Statuses.Redeemed, context.CancellationToken))
        {
            return; // not reused: OpenIddict checks the rest (revoked, inactive, ...)
        }

        var client = context.Principal!.GetPresenters().FirstOrDefault();
        var leeway = client is null ? TimeSpan.Zero : await LeewayOfAsync(client, context.CancellationToken);
        if (leeway > TimeSpan.Zero && await tokens.GetRedemptionDateAsync(token, context.CancellationToken) is { } redeemed
            && context.Options.TimeProvider.GetUtcNow() < redeemed + leeway)
        {
            return;
        }

        if ((string.IsNullOrEmpty(context.AuthorizationId) ? context.Principal!.GetAuthorizationId() : context.AuthorizationId) is { Length: > 0 } family)
        {
            try
            {
                var revoked = await tokens.RevokeByAuthorizationIdAsync(family, context.CancellationToken);
                logger.LogWarning("Refresh token {TokenId} of client {ClientId} was used again: authorization {AuthorizationId} and its {Count} tokens revoked",
                    context.TokenId, client, family, revoked);
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                // As OpenIddict does: the reused token is refused even if the family could not be revoked this time.
                logger.LogWarning(exception, "The tokens of authorization {AuthorizationId} could not be revoked", family);
            }
        }

        context.Reject(error: Errors.InvalidToken, description: "The specified refresh token has already been redeemed.");
    }

    private async ValueTask<TimeSpan> LeewayOfAsync(string clientId, CancellationToken cancellationToken)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken); // cached (ClientApplicationManager)
        return application is not null
            && (await applications.GetPropertiesAsync(application, cancellationToken))
                .TryGetValue(ClientSeeder.RefreshTokenReuseLeewayProperty, out var value)
            && value.ValueKind == JsonValueKind.String
            && TimeSpan.TryParseExact(value.GetString(), "c", CultureInfo.InvariantCulture, out var leeway)
                ? TimeSpan.FromTicks(Math.Min(leeway.Ticks, MaxLeeway.Ticks))
                : TimeSpan.Zero;
    }
}

/// <summary>Only refresh tokens with a token entry reach <see cref="RefreshTokenReuse"/> (a scoped handler, resolved per event).</summary>
public sealed class RequireStoredRefreshToken : IOpenIddictServerHandlerFilter<ValidateTokenContext>
{
    public ValueTask<bool> IsActiveAsync(ValidateTokenContext context) =>
        ValueTask.FromResult(!string.IsNullOrEmpty(context.TokenId) && context.Principal?.HasTokenType(TokenTypeIdentifiers.RefreshToken) == true);
}
