using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.Connect.Replacements;

/// <summary>
/// Refuses a token request for a scope that is unknown or that the (authenticated) client may not use,
/// with <c>invalid_scope</c> as RFC 6749 §5.2 prescribes. It replaces OpenIddict's scope validation, which queries
/// the database on every request, with the cached <see cref="ScopeCatalog"/>, and runs after client
/// authentication so that an unauthenticated caller learns nothing about which scopes exist.
/// </summary>
public sealed class ValidateRequestedScopes(ScopeCatalog catalog, IOpenIddictApplicationManager applications)
    : IOpenIddictServerHandler<ValidateTokenRequestContext>
{
    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ValidateTokenRequestContext>()
            .UseScopedHandler<ValidateRequestedScopes>()
            .SetOrder(OpenIddictServerHandlers.Exchange.ValidateScopePermissions.Descriptor.Order - 100)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ValidateTokenRequestContext context)
    {
        // Only grants that take a scope parameter (RFC 6749 §4.4.2); code and refresh grants re-use granted scopes.
        if (!context.Request.IsClientCredentialsGrantType())
        {
            return;
        }

        var requested = context.Request.GetScopes();
        if (requested.IsDefaultOrEmpty)
        {
            return;
        }

        var known = await catalog.GetAsync(context.CancellationToken);
        var application = context.ClientId is { Length: > 0 } clientId
            ? await applications.FindByClientIdAsync(clientId, context.CancellationToken)
            : null;

        foreach (var scope in requested)
        {
            if (!known.ContainsKey(scope) || application is null ||
                !await applications.HasPermissionAsync(application, Permissions.Prefixes.Scope + scope, context.CancellationToken))
            {
                context.Reject(
                    error: Errors.InvalidScope,
                    description: $"The scope '{scope}' is unknown or not allowed for this client.");
                return;
            }
        }
    }
}
