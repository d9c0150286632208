using System.ComponentModel.DataAnnotations;

namespace Identity.Core.Data;

public enum DatabaseProvider
{
    Sqlite,
    PostgreSql,
    SqlServer,
}

/// <summary>The <c>Database</c> configuration section.</summary>
public sealed class DatabaseOptions
{
    public const string SectionName = "Database";

    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Sqlite;

    /// <summary>
    /// Connection string; for SQLite it defaults to a file under <see cref="DataDirectory"/>.
    /// Read from <c>ConnectionStrings:Identity</c> when not set here.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Folder of the embedded SQLite database (relative to the working directory).</summary>
    [Required]
    public string DataDirectory { get; set; } = "data";

    /// <summary>
    /// Apply pending migrations at start. Null means: only for the embedded SQLite default.
    /// Production deployments migrate with <c>Identity.Server migrate</c> before rolling out.
    /// </summary>
    public bool? AutoMigrate { get; set; }

    public bool ShouldAutoMigrate => AutoMigrate ?? Provider == DatabaseProvider.Sqlite;

    /// <summary>
    /// How long opening a connection may take (PostgreSQL <c>Timeout</c>, SQL Server <c>Connect Timeout</c>; SQLite opens
    /// a file). A database that does not answer makes a request fail (503) after this, instead of hanging. A connection
    /// string that names the keyword keeps its own value.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:17:00")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long one command may run (<c>Command Timeout</c>; SQLite's <c>Default Timeout</c>, which is also how long it
    /// waits for a lock). Migrations get their own, longer bound. A connection string that names the keyword keeps its own value.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public string ResolveConnectionString()
    {
        if (!string.IsNullOrWhiteSpace(ConnectionString))
        {
            return ConnectionString;
        }

        if (Provider == DatabaseProvider.Sqlite)
        {
            Directory.CreateDirectory(DataDirectory);
            return $"Data Source={Path.Combine(DataDirectory, "identity.db")};Cache=Shared";
        }

        throw new InvalidOperationException(
            $"Database:ConnectionString (or ConnectionStrings:Identity) is required when Database:Provider is {Provider}.");
    }
}
