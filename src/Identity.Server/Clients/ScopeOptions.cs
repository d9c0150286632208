namespace Identity.Server.Clients;

/// <summary>
/// The scopes declared in configuration (<c>Oidc:Scopes</c>), each with the resources it grants: applied to the store
/// at start by <see cref="ClientSeeder"/>, then read by the token endpoint from the cached
/// <see cref="Connect.ScopeCatalog"/>. The same keys of the <c>Oidc</c> section as ever.
/// </summary>
public sealed class ScopeOptions
{
    public const string SectionName = Connect.OidcOptions.SectionName;

    public List<ScopeDefinition> Scopes { get; set; } = [];
}
