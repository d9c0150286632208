using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace Identity.Core.Data;

/// <summary>
/// Runs a relational command built once (a template) on the context's connection and transaction, as EF Core's own
/// queries do: its logging, interceptors (the statement counts of the tests) and command timeout apply.
/// </summary>
public static class TemplateCommands
{
    public static async Task<int> ExecuteNonQueryAsync(DbContext db, IRelationalCommandTemplate template,
        IReadOnlyDictionary<string, object?> values, CommandSource source, CancellationToken cancellationToken)
    {
        var connection = db.GetService<IRelationalConnection>();
        var command = Rent(connection, template);
        try
        {
            return await command.ExecuteNonQueryAsync(Parameters(db, connection, values, source), cancellationToken);
        }
        finally
        {
            connection.ReturnCommand(command);
        }
    }

    // A template is not run itself: an EF Core command reuses its data reader, so one instance cannot serve two
    // requests at once. Each execution rents the connection's own command and fills it from the template, as EF Core's
    // query pipeline does.
    public static IRelationalCommand Rent(IRelationalConnection connection, IRelationalCommandTemplate template)
    {
        var command = connection.RentCommand();
        command.PopulateFrom(template);
        return command;
    }

    public static RelationalCommandParameterObject Parameters(
        DbContext db, IRelationalConnection connection, IReadOnlyDictionary<string, object?> values, CommandSource source) =>
        new(connection, values, readerColumns: null, db, db.GetService<IRelationalCommandDiagnosticsLogger>(), source);
}
