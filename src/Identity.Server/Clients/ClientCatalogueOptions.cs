using Microsoft.Extensions.Options;

namespace Identity.Server.Clients;

/// <summary>
/// The clients declared in configuration (<c>Oidc:Clients</c>, <c>Oidc:SeedDemoClient</c>): the same keys of the
/// <c>Oidc</c> section as ever, read apart from the server's settings (<see cref="Connect.OidcOptions"/>) and the scopes
/// (<see cref="ScopeOptions"/>). Applied to the store at start by <see cref="ClientSeeder"/>.
/// </summary>
public sealed class ClientCatalogueOptions
{
    public const string SectionName = Connect.OidcOptions.SectionName;

    /// <summary>On a first run of the embedded SQLite default with nothing declared, create a demo M2M client.</summary>
    public bool SeedDemoClient { get; set; } = true;

    public List<ClientDefinition> Clients { get; set; } = [];
}

/// <summary>Each declared client follows <see cref="ClientDefinitionRules"/>, and no client id is declared twice.</summary>
public sealed class ClientCatalogueOptionsValidator : IValidateOptions<ClientCatalogueOptions>
{
    public ValidateOptionsResult Validate(string? name, ClientCatalogueOptions options)
    {
        var failures = new List<string>();
        for (var i = 0; i < options.Clients.Count; i++)
        {
            failures.AddRange(ClientDefinitionRules.Validate(options.Clients[i], $"Oidc:Clients:{i}"));
        }

        var duplicate = options.Clients.GroupBy(c => c.ClientId, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            failures.Add($"Oidc:Clients declares '{duplicate.Key}' more than once.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
